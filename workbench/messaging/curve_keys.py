"""CURVE key pairs for the bus: writing them, and the config lines that name them.

``workbench keys generate DIR`` uses this; loading keys at run time is in
`workbench.messaging.security`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import zmq


def generate_keys(folder: Path, names: list[str], *, force: bool = False) -> dict[str, str]:
    """Write one CURVE key pair per name into ``folder``; returns the public keys.

    Files are zmq.auth certificates: ``<name>.key`` (public) and
    ``<name>.key_secret`` (mode 0600, synced before it replaces anything). A
    folder made here is 0700; an existing one keeps its mode (a shared
    ``/etc/workbench`` must stay readable to the service's user).

    Both checks come before any file is written: a refusal writes nothing.

    Raises:
        ValueError: a name is given twice.
        FileExistsError: a secret file is there already and not ``force``.
    """
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:  # the second pair found the first's secret file: half written, then refused
        raise ValueError(f"names: {', '.join(map(repr, repeated))} given twice; one pair each")
    folder = Path(folder)
    for name in names:
        secret_file = folder / f"{name}.key_secret"
        if secret_file.exists() and not force:
            raise FileExistsError(f"{secret_file}: exists; pass --force to replace it")
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True)
        os.chmod(folder, 0o700)  # whatever the umask
    publics: dict[str, str] = {}
    for name in names:
        secret_file = folder / f"{name}.key_secret"
        public, secret = zmq.curve_keypair()
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        head = f"#   ****  workbench CURVE certificate for {name}, {stamp}  ****\n"
        _write(folder / f"{name}.key", 0o644, _cert(head, public))
        _write(secret_file, 0o600, _cert(head, public, secret))
        publics[name] = public.decode()
    return publics


def _cert(head: str, public: bytes, secret: bytes | None = None) -> str:
    lines = [head, "metadata\n", "curve\n", f'    public-key = "{public.decode()}"\n']
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode()}"\n')
    return "".join(lines)


def _write(path: Path, mode: int, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())  # a power cut must not leave an empty key in its place
    os.chmod(tmp, mode)  # the umask may have narrowed it; we want exactly this
    tmp.replace(path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename, on disk
    finally:
        os.close(dir_fd)


def config_lines(publics: dict[str, str], keys_dir: str) -> str:
    """The TOML a config needs for these keys."""
    out = ["[security]", "curve = true", f"keys_dir = {_toml_str(keys_dir)}", ""]
    out += ["[security.public_keys]"]
    out += [f'{_toml_key(n)} = "{k}"' for n, k in publics.items()]
    return "\n".join(out) + "\n"


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_str(name)


def _toml_str(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's): ``k\\new`` stays a backslash."""
    return json.dumps(text)
