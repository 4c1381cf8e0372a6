"""The toy reproduction of the paper's central experiment."""
