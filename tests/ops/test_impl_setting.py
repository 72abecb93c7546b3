"""The op implementation is a run-time setting: use_impl blocks, set_impl, STYLEGAN2_TF_IMPL;
networks do not store it, and files that did still load."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.ops import current_impl, set_impl, setup_filter, upsample2d, use_impl


def _op_types(impl):
    """Op types of a traced upsample2d under use_impl(impl)."""
    f = setup_filter([1, 3, 3, 1])
    function = tf.function(lambda x: upsample2d(x, f))
    with use_impl(impl):
        graph = function.get_concrete_function(tf.TensorSpec([1, 4, 4, 2], tf.float32)).graph
    return {op.type for op in graph.get_operations()}


def test_use_impl_selects_the_ops_a_function_traces_with():
    assert "StyleGAN2>Upfirdn2d" in _op_types("custom")
    assert not any(t.startswith("StyleGAN2") for t in _op_types("ref"))


def test_blocks_nest_and_restore():
    outer = current_impl()
    with use_impl("ref"):
        assert current_impl() == "ref"
        with use_impl("custom"):
            assert current_impl() == "custom"
        with use_impl(None):
            assert current_impl() == "ref"
        assert current_impl() == "ref"
    assert current_impl() == outer
    with pytest.raises(ValueError, match="impl must be one of auto, ref, custom. Received: 'fast'"), \
            use_impl("fast"):
        pass


def test_set_impl_and_the_environment_variable(monkeypatch):
    monkeypatch.setenv("STYLEGAN2_TF_IMPL", "ref")
    assert current_impl() == "ref"
    try:
        set_impl("custom")
        assert current_impl() == "custom"
        with use_impl("ref"):
            assert current_impl() == "ref"
    finally:
        set_impl(None)
    assert current_impl() == "ref"
    monkeypatch.setenv("STYLEGAN2_TF_IMPL", "gpu")
    with pytest.raises(ValueError, match=r"\$STYLEGAN2_TF_IMPL must be one of"):
        current_impl()


def test_use_impl_is_per_thread():
    import threading

    seen = []
    with use_impl("ref"):
        thread = threading.Thread(target=lambda: seen.append(current_impl()))
        thread.start()
        thread.join()
    assert seen == [current_impl()]


def test_networks_do_not_store_it_and_old_files_still_load(tmp_path, tiny_generator):
    G = tiny_generator(channel_max=8)
    config = keras.saving.serialize_keras_object(G)
    assert '"impl"' not in str(config).replace("'", '"')
    config["config"]["impl"] = "custom"  # as files saved before it became a setting
    old = keras.saving.deserialize_keras_object(config)
    old.set_weights(G.get_weights())
    z = np.random.RandomState(0).randn(2, 8).astype(np.float32)
    np.testing.assert_array_equal(old(z, noise_mode="const").numpy(), G(z, noise_mode="const").numpy())


def test_scripts_take_impl_from_the_flag_or_the_environment():
    code = ("import sys; sys.argv = ['x.py'] + sys.argv[1:]; from stylegan2_tf import cli; "
            "from stylegan2_tf.ops import current_impl; "
            "cli.run(lambda argv: print('impl', current_impl()))")
    flag = subprocess.run([sys.executable, "-c", code, "--impl=ref"], capture_output=True, text=True,
                          check=False)
    assert flag.returncode == 0 and "impl ref" in flag.stdout, flag.stderr
    env = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         env={**__import__("os").environ, "STYLEGAN2_TF_IMPL": "custom"})
    assert env.returncode == 0 and "impl custom" in env.stdout, env.stderr


@pytest.mark.parametrize("variable,value,message", [
    ("STYLEGAN2_TF_IMPL", "fast", "$STYLEGAN2_TF_IMPL must be one of auto, ref, custom. Received: 'fast'"),
    ("STYLEGAN2_TF_CPU_ISA", "avx-512", ("$STYLEGAN2_TF_CPU_ISA='avx-512': expected auto (AVX-512 CPU "
                                         "loops where the CPU runs them) or baseline (never)")),
])
def test_scripts_refuse_a_malformed_setting_in_one_line(variable, value, message):
    """Before main runs (inside a trace it would come wrapped in TensorFlow's traceback)."""
    code = ("import sys; sys.argv = ['x.py']; from stylegan2_tf import cli; "
            "cli.run(lambda: print('main ran'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                            env={**__import__("os").environ, variable: value})
    assert result.returncode == 2 and "main ran" not in result.stdout, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("x.py:")] == [
        f"x.py: error: {message}"]
    assert "Traceback" not in result.stderr
