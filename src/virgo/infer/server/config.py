"""`virgo serve`'s options: one dataclass, from which the command line, YAML and ``--print-config`` come."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from virgo.config.fields import opt, section
from virgo.infer.config import GenerateConfig
from virgo.modeling.images import DEFAULT_MAX_PIXELS

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to expose a model beyond this machine without a key."""
    if not is_loopback(host) and not api_key:
        raise ValueError(f"binding to {host} exposes the model beyond this machine: set --api-key "
                         "(or VIRGO_API_KEY)")


@dataclass
class ServeConfig:
    """`virgo serve`: an OpenAI-compatible server for one local model."""

    model: str = opt(short="-m", help="Checkpoint directory (or hub id) to serve.")
    host: str = opt("127.0.0.1", help="Address to bind. Anything but loopback requires --api-key.")
    port: int = opt(8000, ge=1, le=65535, help="Port to listen on.")
    api_key: str | None = opt(None, env="VIRGO_API_KEY", secret=True, help="Clients must send 'Authorization: "
                              "Bearer <key>' on /v1/ paths (prefer the environment variable).")
    image_root: str | None = opt(None, path=True, help="Directory from which image_url parts may name local files "
                                 "(otherwise only data URLs are accepted).")
    served_model_name: list[str] = opt([], help="Name(s) a request's model field may use; the first is the name "
                                       "in responses. Repeatable. Other names get 404 model_not_found. Default: "
                                       "the model directory's name.")
    max_body_mb: float = opt(32.0, gt=0, help="Larger request bodies get 413.")
    max_image_pixels: int = opt(DEFAULT_MAX_PIXELS, ge=1, help="Larger images get 400 (checked from the header, "
                                "before decoding).")
    max_queue: int = opt(64, ge=1, help="Completions that may wait for a decoding slot (a request with n choices "
                         "takes n); beyond it a request gets 429 with Retry-After.")
    request_timeout: float | None = opt(600.0, gt=0, help="Seconds a request may take from its arrival, queue "
                                        "included; then it is stopped and answered 504 (a stream ends with an "
                                        "error event). null = no limit.")
    batch_wait: float = opt(0.01, ge=0, help="Seconds the decoder waits for more requests to fill a batch.")
    log_level: str = opt("info", choices=LOG_LEVELS, help="uvicorn's log level.")
    generate: GenerateConfig = section(GenerateConfig, help="Decoding defaults for requests that leave a setting "
                                       "out, and the served model's batch size and dtype (prompt, system, n and "
                                       "seed do not apply: a request brings its own messages)")

    def validate(self) -> None:
        check_bind(self.host, self.api_key)
        if self.image_root is not None and not Path(self.image_root).is_dir():
            raise ValueError(f"image_root: {self.image_root} is not a directory")

    @property
    def names(self) -> list[str]:
        """The names the model answers to; the first is the one responses carry."""
        return list(self.served_model_name) or [Path(str(self.model)).name or str(self.model)]

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)
