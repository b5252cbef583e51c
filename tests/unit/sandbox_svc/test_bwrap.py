from __future__ import annotations

from pathlib import Path

from sandbox_svc.local.bwrap import SandboxLayout, bwrap_argv, launcher_argv


def _layout(tmp_path: Path) -> SandboxLayout:
    return SandboxLayout(workspace=tmp_path / "ws", run_dir=tmp_path / "run",
                         etc_dir=tmp_path / "etc", venv=tmp_path / "venv",
                         packages=(tmp_path / "sandgate",))


def _pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def test_every_namespace_is_unshared_and_uid_is_nobody(tmp_path: Path) -> None:
    argv = bwrap_argv(_layout(tmp_path), ["true"], {})
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
                 "--unshare-uts", "--unshare-cgroup", "--new-session"):
        assert flag in argv
    assert argv[argv.index("--uid") + 1] == "65534"
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--share-net" not in argv and "--die-with-parent" not in argv


def test_only_workspace_and_run_dir_are_writable(tmp_path: Path) -> None:
    argv = bwrap_argv(_layout(tmp_path), ["true"], {})
    writable = _pairs(argv, "--bind")
    assert writable == [(str(tmp_path / "ws"), "/workspace"),
                        (str(tmp_path / "run"), "/run/sandgate")]
    readonly = dict((dst, src) for src, dst in _pairs(argv, "--ro-bind"))
    assert readonly["/usr"] == "/usr"
    assert "/etc" not in readonly and "/root" not in readonly and "/home" not in readonly


def test_environment_is_cleared_then_set(tmp_path: Path) -> None:
    argv = bwrap_argv(_layout(tmp_path), ["sh"], {"A": "1"})
    assert argv.index("--clearenv") < argv.index("--setenv")
    assert argv[-2:] == ["--", "sh"] or argv[-1] == "sh"


def test_launcher_joins_cgroups_before_dropping_to_the_sandbox_uid(tmp_path: Path) -> None:
    procs = [tmp_path / "memory" / "cgroup.procs", tmp_path / "pids" / "cgroup.procs"]
    argv = launcher_argv(procs, 200_007, ["bwrap", "true"])
    separator = argv.index("--")
    assert argv[4:separator] == [str(p) for p in procs]
    assert argv[separator + 1] == "setpriv"
    assert "--reuid=200007" in argv and "--clear-groups" in argv
    assert argv[-2:] == ["bwrap", "true"]


def test_nested_user_namespaces_are_disabled_and_asserted(tmp_path: Path) -> None:
    argv = bwrap_argv(_layout(tmp_path), ["true"], {})
    assert "--disable-userns" in argv and "--assert-userns-disabled" in argv
    assert argv.index("--disable-userns") < argv.index("--")


def test_the_seccomp_program_is_read_from_the_given_fd(tmp_path: Path) -> None:
    assert "--seccomp" not in bwrap_argv(_layout(tmp_path), ["true"], {})
    argv = bwrap_argv(_layout(tmp_path), ["true"], {}, seccomp_fd=7)
    assert argv[argv.index("--seccomp") + 1] == "7"
    assert argv.index("--seccomp") < argv.index("--")
