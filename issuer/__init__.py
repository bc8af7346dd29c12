"""The Privacy Pass issuer: a joint attester and issuer (RFC 9576 §4.3) for token type 0x0002.

``create_app`` (``issuer.app``) serves the issuer directory (RFC 9578 §4) and the token request
resource (RFC 9578 §5, §6); ``ohttp issuer`` runs it. See docs/privacy-pass.md.
"""
