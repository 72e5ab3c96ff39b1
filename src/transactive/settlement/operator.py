"""The operator's signing key: who attests a journal (its checkpoints).

Anyone holding a run folder can rewrite its journal and recompute the hash
chain; they cannot sign as the operator, whose Ed25519 private key lives
outside every data folder, in the user's configuration directory
(:func:`default_key_path`), created on first use, readable by its owner only.
A verifier elsewhere is given the operator's public key (``transactive ledger
key`` prints it) and checks the journal's checkpoints against it
(:func:`trusted_operator`, :func:`~transactive.settlement.verify.verify_run`).

The key file is the private key as PEM (PKCS #8, unencrypted), mode 0600 in a
directory of mode 0700.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from transactive.errors import InputError
from transactive.settlement._signing import public_key

__all__ = ["CONFIG_DIR_VAR", "KEY_FILE", "default_key_path", "operator_key", "trusted_operator"]

#: The environment variable naming the configuration directory (before XDG's).
CONFIG_DIR_VAR = "TRANSACTIVE_CONFIG_DIR"
KEY_FILE = "operator.key"


def default_key_path() -> Path:
    """Where the local operator key lives: ``$TRANSACTIVE_CONFIG_DIR/operator.key``
    if that is set, else ``$XDG_CONFIG_HOME/transactive/operator.key``, else
    ``~/.config/transactive/operator.key``.

    Examples
    --------
    >>> default_key_path().name
    'operator.key'
    """
    config = os.environ.get(CONFIG_DIR_VAR)
    if config:
        return Path(config) / KEY_FILE
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "transactive" / KEY_FILE


def operator_key(path: str | os.PathLike[str] | None = None) -> Ed25519PrivateKey:
    """The operator's private key in ``path`` (default :func:`default_key_path`),
    created there on first use (mode 0600, its directory made with mode 0700,
    written atomically: two processes starting at once get the same key).

    A key file that others may read or write, or that does not hold an
    Ed25519 private key, is refused (:class:`~transactive.errors.InputError`
    naming the path).
    """
    file = Path(path) if path is not None else default_key_path()
    try:
        return _load(file)
    except FileNotFoundError:
        pass
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # never over a key made meanwhile
            os.link(tmp, file)
    finally:
        os.unlink(tmp)
    return _load(file)


def _load(file: Path) -> Ed25519PrivateKey:
    with file.open("rb") as fh:  # FileNotFoundError: none yet
        mode = stat.S_IMODE(os.fstat(fh.fileno()).st_mode)
        if mode & 0o077:
            raise InputError("operator_key", f"{file} can be read or written by others "
                             f"(mode {mode:04o}): `chmod 600 {file}`, and if others could "
                             "read it, replace the key")
        data = fh.read()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError("operator_key", f"{file} does not hold an Ed25519 private key "
                         "(PEM, PKCS #8, unencrypted)")
    return key


def trusted_operator(value: Ed25519PublicKey | str | os.PathLike[str] | None = None
                     ) -> Ed25519PublicKey:
    """The operator public key a verifier trusts: ``value`` as 64 hex digits or
    a file holding them (or a key), else the public half of the local operator
    key (:func:`operator_key`) if its file exists.

    Examples
    --------
    >>> trusted_operator("3b" * 32).public_bytes_raw().hex()[:8]
    '3b3b3b3b'
    """
    if isinstance(value, Ed25519PublicKey):
        return value
    if value is None:
        local = default_key_path()
        if not local.exists():
            raise InputError("operator", "no trusted operator key: give the operator's public "
                             "key (64 hex digits, or a file holding them: `transactive ledger "
                             f"key` prints it on the operator's machine); no local key in {local}")
        return operator_key(local).public_key()
    text = os.fspath(value)
    if _is_hex_key(text):
        return public_key(text, "operator")
    file = Path(text)
    if not file.is_file():
        raise InputError("operator", f"{text!r} is neither 64 hex digits nor a file holding them")
    held = file.read_text(encoding="ascii", errors="replace").strip()
    if not _is_hex_key(held):
        raise InputError("operator", f"{file} does not hold an operator public key "
                         "(64 hex digits)")
    return public_key(held, "operator")


def _is_hex_key(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)
