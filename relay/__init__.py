"""Oblivious Relay Resource (RFC 9458 §6.2): forwards ciphertext, passes on nothing else."""

from __future__ import annotations

from relay.config import GatewayTarget, RelayConfig, load_config

__all__ = ["GatewayTarget", "RelayConfig", "load_config"]
