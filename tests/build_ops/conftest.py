"""Stand-ins shared by the build tests."""

import pytest


@pytest.fixture
def fake_nvcc(tmp_path):
    """(path, record): an `nvcc` script that lists sm_75..sm_90 and says it is 12.5;
    asked to compile, it writes its arguments to `record` (one per line) and exits 3."""
    record = tmp_path / "nvcc_args.txt"
    script = tmp_path / "nvcc"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --list-gpu-code ]; then echo "sm_75 sm_80 sm_86 sm_89 sm_90"; exit 0; fi\n'
        'if [ "$1" = --version ]; then echo "Cuda compilation tools, release 12.5, V12.5.82"; exit 0; fi\n'
        f'printf "%s\\n" "$@" > "{record}"\n'
        'echo "fake nvcc: no compiling here" >&2\n'
        "exit 3\n"
    )
    script.chmod(0o755)
    return str(script), record
