"""CURVE keys and config: files, modes, errors that name the file and the field."""

from __future__ import annotations

import stat
import tomllib

import pytest
import zmq
import zmq.auth

from workbench.cli import main
from workbench.config import build_config, load_config
from workbench.exceptions import ConfigurationError
from workbench.messaging.curve_keys import generate_keys
from workbench.messaging.security import (
    load_identity,
    private_ipc_dir,
    secret_env_name,
)


def test_keys_generate_writes_0600_secrets_and_prints_loadable_config_lines(tmp_path, capsys):
    keys = tmp_path / "keys"
    assert main(["keys", "generate", str(keys)]) == 0
    out = capsys.readouterr().out
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for name in ("gateway", "executor", "sr-1", "supervisor", "tap"):
        assert stat.S_IMODE((keys / f"{name}.key_secret").stat().st_mode) == 0o600
        public, secret = zmq.auth.load_certificate(keys / f"{name}.key_secret")
        assert secret is not None and secret.decode() not in out
        assert public.decode() in out
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("\n".join(line for line in out.splitlines() if not line.startswith("#")))
    cfg = load_config(cfg_file)
    assert cfg.security.curve
    assert (
        load_identity(cfg, "gateway").public == zmq.auth.load_certificate(keys / "gateway.key")[0]
    )


def test_printed_lines_work_in_a_config_of_another_folder(tmp_path, capsys, monkeypatch):
    # A relative DIR was printed as given (from the shell's folder), but a config
    # reads keys_dir from its own folder: the pasted lines named a missing folder.
    monkeypatch.chdir(tmp_path)
    assert main(["keys", "generate", "keys"]) == 0
    out = capsys.readouterr().out
    (tmp_path / "etc").mkdir()
    cfg_file = tmp_path / "etc" / "c.toml"
    cfg_file.write_text("\n".join(line for line in out.splitlines() if not line.startswith("#")))
    cfg = load_config(cfg_file)
    assert cfg.resolve(cfg.security.keys_dir) == tmp_path / "keys"
    assert load_identity(cfg, "gateway").public is not None


def test_keys_generate_refuses_to_overwrite_a_secret(tmp_path, capsys):
    assert main(["keys", "generate", str(tmp_path), "--names", "gateway"]) == 0
    assert main(["keys", "generate", str(tmp_path), "--names", "gateway"]) == 2
    assert "exists" in capsys.readouterr().err


def test_curve_without_a_members_public_key_names_the_field(tmp_path):
    publics = generate_keys(tmp_path, ["gateway", "executor", "supervisor"])
    f = tmp_path / "c.toml"
    f.write_text(
        "[security]\ncurve = true\n[security.public_keys]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in publics.items())
    )
    with pytest.raises(ConfigurationError) as e:
        load_config(f)
    assert str(f) in str(e.value) and "security.public_keys" in str(e.value)
    assert "sr-1" in str(e.value)


def test_a_malformed_public_key_is_a_config_error():
    with pytest.raises(ConfigurationError, match=r"security\.public_keys"):
        build_config({"security": {"public_keys": {"gateway": "short"}}})


def test_the_secret_may_come_from_the_environment_and_is_never_in_repr(tmp_path, monkeypatch):
    publics = generate_keys(tmp_path / "k", ["gateway", "executor", "sr-1", "supervisor"])
    _, secret = zmq.auth.load_certificate(tmp_path / "k" / "gateway.key_secret")
    cfg = build_config({"security": {"curve": True, "public_keys": publics}})
    with pytest.raises(ConfigurationError, match=r"security\.keys_dir"):
        load_identity(cfg, "gateway")
    monkeypatch.setenv(secret_env_name("gateway"), secret.decode())
    ident = load_identity(cfg, "gateway")
    assert ident.secret == secret and secret.decode() not in repr(ident)
    assert secret.decode() not in cfg.to_toml()


def test_a_secret_file_others_can_read_is_refused(tmp_path):
    publics = generate_keys(tmp_path / "k", ["gateway", "executor", "sr-1", "supervisor"])
    (tmp_path / "k" / "gateway.key_secret").chmod(0o644)
    cfg = build_config(
        {"security": {"curve": True, "keys_dir": str(tmp_path / "k"), "public_keys": publics}}
    )
    with pytest.raises(ConfigurationError, match="0600"):
        load_identity(cfg, "gateway")


def test_ipc_folders_are_made_private(tmp_path):
    folder = tmp_path / "bus"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    private_ipc_dir(f"ipc://{folder}/ticks", strict=True)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_shared_ipc_folder_is_refused_with_curve_on():
    with pytest.raises(ConfigurationError, match="others can open"):
        private_ipc_dir("ipc:///tmp/wb-ticks", strict=True)


def test_the_saved_config_keeps_keys_dir_pointing_at_the_same_folder(tmp_path):
    publics = generate_keys(tmp_path / "keys", ["gateway", "executor", "sr-1", "supervisor"])
    cfg = build_config(
        {"security": {"curve": True, "keys_dir": "keys", "public_keys": publics}},
        base_dir=tmp_path,
    )
    dest = cfg.save(tmp_path / "elsewhere" / "c.toml")
    saved = tomllib.loads(dest.read_text())
    assert saved["security"]["keys_dir"] == "../keys"
    assert load_identity(load_config(dest), "gateway").name == "gateway"


def test_a_public_key_of_z85_characters_that_decodes_to_nothing_is_a_config_error():
    # 40 z85 characters passed; "#####" is above 2**32, libzmq said EINVAL at the
    # first socket, and `up` and `halt` ended in a traceback.
    from workbench.config import build_config

    good = zmq.curve_keypair()[0].decode()
    with pytest.raises(ConfigurationError, match="z85 public key: executor"):
        build_config({"security": {"public_keys": {"gateway": good, "executor": "#" * 40}}})


def test_keys_generate_refuses_a_name_of_the_config_again_writing_nothing(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    keys = tmp_path / "keys"
    argv = ["keys", "generate", str(keys), "--config", str(cfg), "--names", "executor,tap"]
    assert main(argv) == 2
    assert "error: --names: 'executor' is the config's already" in capsys.readouterr().err
    assert not keys.exists()


def test_generate_keys_refuses_a_repeated_name_or_an_existing_secret_before_writing(tmp_path):
    with pytest.raises(ValueError, match="names: 'a' given twice"):
        generate_keys(tmp_path / "k", ["a", "b", "a"])
    assert not (tmp_path / "k").exists()
    generate_keys(tmp_path / "k", ["b"])
    with pytest.raises(FileExistsError, match=r"b\.key_secret: exists"):
        generate_keys(tmp_path / "k", ["a", "b"])
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["b.key", "b.key_secret"]


def test_keys_into_an_existing_shared_folder_leave_its_mode_alone(tmp_path, capsys):
    # It was chmod'ed to 0700: a config in /etc/workbench became unreadable to the service.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    assert main(["keys", "generate", str(shared)]) == 0
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "gateway.key_secret").stat().st_mode) == 0o600


def test_a_keys_dir_with_a_backslash_or_a_quote_is_printed_as_valid_toml(tmp_path, capsys):
    # 'k\new' was printed inside a TOML basic string unescaped: read back as a newline.
    keys = tmp_path / 'k\\new "x"'
    assert main(["keys", "generate", str(keys)]) == 0
    out = capsys.readouterr().out
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("\n".join(line for line in out.splitlines() if not line.startswith("#")))
    cfg = load_config(cfg_file)
    assert cfg.resolve(cfg.security.keys_dir) == keys
    assert load_identity(cfg, "gateway").name == "gateway"
