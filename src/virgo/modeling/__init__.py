"""Model families, loading, the VLM mechanics every stage shares (images, image tokens, M-RoPE positions) and the
tiny-model factory.

``family.py`` (what a family is, ``detect``) and ``families/`` (one module per supported family), ``images.py``
(opening images, image-token counts), ``load.py``, ``processor.py`` (torchvision-free processors), ``tiny.py``.
"""
