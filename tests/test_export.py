"""`temrf export` end to end, offline: a BioImage Model Zoo package of `hr-au` that bioimageio.core's own model test
passes, whose ONNX and TorchScript weights give temrf's probabilities, and the refusals that leave everything as it was."""
import socket

import numpy as np
import pytest
import torch

pytest.importorskip('bioimageio.core')
pytest.importorskip('onnxruntime')

from temrf.cli import main
from temrf.infer import pretrained, segment


@pytest.fixture(scope='module')
def offline():
    "No network: any socket connection fails, so a package that needs a download fails its test"
    def refuse(*args, **kwargs): raise OSError('network access in an offline test')
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, 'connect', refuse)
        mp.setattr(socket, 'create_connection', refuse)
        yield


@pytest.fixture(scope='module')
def pkg(tmp_path_factory, offline):
    "`temrf export hr-au --out <tmp>/pkg/`, as a user runs it"
    out = tmp_path_factory.mktemp('export')/'pkg'
    assert main(['export', 'hr-au', '--out', f'{out}/']) == 0
    return out


@pytest.mark.slow
def test_bioimageio_core_passes(pkg, offline):
    from bioimageio.core import test_model as core_test
    summary = core_test(pkg/'rdf.yaml')
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status == 'failed']
    assert summary.status == 'passed', failed
    reproduced = {d.name for d in summary.details if d.name.startswith('Reproduce test outputs') and d.status == 'passed'}
    assert reproduced == {f'Reproduce test outputs from test inputs ({w})' for w in ('onnx', 'torchscript', 'pytorch_state_dict')}


def test_weights_match_temrf(pkg):
    "ONNX (onnxruntime) and TorchScript give temrf.infer.segment's probabilities on the prepared test tensor"
    import onnxruntime
    x = np.load(pkg/'test_input.npy')
    z = ((x - x.mean())/(x.std() + 1e-6)).astype(np.float32)  # the package's preprocessing: temrf's standardization
    ref = segment(pretrained('hr-au', 'cpu'), z[0, 0], xrays=False, progress=False)
    onnx = onnxruntime.InferenceSession(str(pkg/'weights.onnx'), providers=['CPUExecutionProvider']).run(None, dict(raw=z))[0]
    with torch.no_grad(): ts = torch.jit.load(str(pkg/'weights_torchscript.pt'))(torch.from_numpy(z)).numpy()
    d_onnx, d_ts = np.abs(onnx[0, 0] - ref).max(), np.abs(ts[0, 0] - ref).max()
    print(f"max |ONNX - temrf| {d_onnx:.1e}, max |TorchScript - temrf| {d_ts:.1e}")
    assert d_onnx < 1e-4 and d_ts < 1e-4
    np.testing.assert_allclose(np.load(pkg/'test_output.npy')[0, 0], ref, atol=1e-4)


def test_refusals_touch_nothing(pkg, tmp_path, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in pkg.iterdir()}
    assert main(['export', 'hr-au', '--out', str(pkg)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'holds an earlier package; pass --overwrite' in err
    assert {p.name: p.stat().st_mtime_ns for p in pkg.iterdir()} == before
    junk = tmp_path/'notes.pth'
    junk.write_bytes(b'not a model')
    assert main(['export', str(junk), '--out', str(tmp_path/'p')]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'neither a temrf model file nor a study checkpoint' in err
    assert not (tmp_path/'p').exists() and sorted(p.name for p in tmp_path.iterdir()) == ['notes.pth']
