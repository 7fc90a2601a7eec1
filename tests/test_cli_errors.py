"""Every user error of the ``multilevel`` command is one ``error:`` line on stderr and exit
status 2, never a traceback: bad command lines, unreadable files, bad data, bad arguments.
A bug is one ``internal error:`` line and status 1. Run in-process through
``multilevel.cli.main.main`` (and once as ``python -m multilevel``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import multilevel.cli.main as cli
from multilevel.cli.main import MAX_MESSAGE, main

FORMULA = "Reaction ~ Days + (Days | Subject)"


def user_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the command; assert status 2, nothing on stdout, exactly one error line."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


# -- the command line itself ----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    [],
    ["nonsense"],
    ["fit"],
    ["fit", FORMULA],
    ["fit", FORMULA, "--data", "sleepstudy", "--ddf", "banana"],
    ["fit", FORMULA, "--data", "sleepstudy", "--no-such-option"],
    ["power", FORMULA, "--data", "sleepstudy", "--test", "Days", "--effect", "nan"],
    ["power", FORMULA, "--data", "sleepstudy", "--test", "Days", "--effect", "inf"],
    ["power", FORMULA, "--data", "sleepstudy", "--test", "Days", "--effect", "x"],
    ["power", FORMULA, "--data", "sleepstudy", "--test", "Days", "--seed", "-1"],
    ["power", FORMULA, "--data", "sleepstudy", "--test", "Days", "--seed", "1.5"],
    ["power", FORMULA, "--data", "sleepstudy", "--test", "Days", "--nsim", "0"],
    ["power", FORMULA, "--data", "sleepstudy", "--test", "Days", "--alpha", "1.5"],
    ["power", FORMULA, "--data", "sleepstudy", "--test", "Days", "--alpha", "nan"],
])
def test_bad_command_line(capsys, argv):
    line = user_error(capsys, *argv)
    assert "--help" in line  # says where to look


def test_bad_value_is_named(capsys):
    line = user_error(capsys, "power", FORMULA, "--data", "sleepstudy", "--test", "Days",
                      "--seed", "-1")
    assert "--seed" in line and "-1" in line
    line = user_error(capsys, "power", FORMULA, "--data", "sleepstudy", "--test", "Days",
                      "--effect", "nan")
    assert "--effect" in line and "nan" in line


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "fit" in capsys.readouterr().out


def test_compare_with_one_formula(capsys):
    line = user_error(capsys, "compare", FORMULA, "--data", "sleepstudy")
    assert "two or more formulas" in line


# -- files that cannot be read --------------------------------------------------------------

def test_empty_csv(capsys, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    line = user_error(capsys, "fit", FORMULA, "--data", str(path))
    assert "empty.csv" in line and "empty" in line


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null on this platform")
def test_dev_null(capsys):
    assert "/dev/null" in user_error(capsys, "fit", FORMULA, "--data", "/dev/null")


def test_directory(capsys, tmp_path):
    assert "directory" in user_error(capsys, "fit", FORMULA, "--data", str(tmp_path))


def test_latin1_csv_names_the_encoding_option(capsys, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("Reaction,Days,Subject\n1.5,0,Jos\xe9\n".encode("latin-1"))
    line = user_error(capsys, "fit", FORMULA, "--data", str(path))
    assert "latin1.csv" in line and "--encoding" in line


def test_latin1_csv_reads_with_its_encoding(capsys, tmp_path):
    """With --encoding the same file is read: the error is now about the data (one row)."""
    path = tmp_path / "latin1.csv"
    path.write_bytes("Reaction,Days,Subject\n1.5,0,Jos\xe9\n".encode("latin-1"))
    line = user_error(capsys, "fit", FORMULA, "--data", str(path), "--encoding", "latin-1")
    assert "utf-8" not in line


def test_unknown_encoding(capsys, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")
    assert "klingon" in user_error(capsys, "fit", FORMULA, "--data", str(path),
                                   "--encoding", "klingon")


def test_binary_file(capsys, tmp_path):
    path = tmp_path / "random.csv"
    path.write_bytes(bytes(range(256)) * 40)
    user_error(capsys, "fit", FORMULA, "--data", str(path))


def test_corrupt_parquet(capsys, tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1" + b"\x00garbage" * 50)
    assert "broken.parquet" in user_error(capsys, "fit", FORMULA, "--data", str(path))


def test_name_with_nul_byte_or_too_long(capsys):
    user_error(capsys, "fit", FORMULA, "--data", "a\x00b")
    line = user_error(capsys, "fit", FORMULA, "--data", "x" * 5000)
    assert len(line) < MAX_MESSAGE + 100


# -- what is quoted is cut ------------------------------------------------------------------

def test_huge_header_line_gives_a_short_message(capsys, tmp_path):
    path = tmp_path / "wide.csv"
    header = "Reaction,Days," + "S" * 2_000_000
    path.write_text(f"{header}\n1,2,3\n4,5,6\n")
    line = user_error(capsys, "fit", FORMULA, "--data", str(path))
    assert "Subject" in line  # the missing column is still named
    assert len(line) <= len("error: ") + MAX_MESSAGE + len(" ...")


def test_huge_formula_gives_a_short_message(capsys):
    line = user_error(capsys, "fit", "Reaction ~ " + "Dayz + " * 100_000 + "(1 | Subject)",
                      "--data", "sleepstudy")
    assert len(line) <= len("error: ") + MAX_MESSAGE + len(" ...")


# -- bugs are not user errors ---------------------------------------------------------------

def test_internal_error_is_one_line_and_status_1(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "lmer", broken)
    monkeypatch.delenv("MULTILEVEL_TRACEBACK", raising=False)
    code = main(["fit", FORMULA, "--data", "sleepstudy"])
    _, err = capsys.readouterr()
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("internal error: ZeroDivisionError: a bug")
    assert "please report" in lines[0]


def test_traceback_on_request(monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "lmer", broken)
    monkeypatch.setenv("MULTILEVEL_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        main(["fit", FORMULA, "--data", "sleepstudy"])


def test_python_dash_m_user_error(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "MULTILEVEL_TRACEBACK"}
    proc = subprocess.run([sys.executable, "-m", "multilevel", "compare", FORMULA, "--data",
                           str(path)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_closed_output_pipe_is_not_an_error():
    """``multilevel ... | head``: the reader goes away before the output is written. Closing
    the read end before the command has even started writing makes the write fail for sure."""
    env = {k: v for k, v in os.environ.items() if k != "MULTILEVEL_TRACEBACK"}
    proc = subprocess.Popen([sys.executable, "-m", "multilevel", "fit", FORMULA, "--data",
                             "sleepstudy", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == cli.EXIT_BROKEN_PIPE
    assert err == ""
