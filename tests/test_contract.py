"""A shipped model's weights file carries its contract: copied anywhere under any name, it is prepared, resampled and
exported exactly as under its shipped name."""
import shutil
import numpy as np
import pytest
from temrf.infer import segment
from temrf.shipped import MODELS_DIR, SHIPPED, pretrained


@pytest.mark.parametrize('name', sorted(SHIPPED))
def test_copied_model_file_is_the_same_model(tmp_path, name):
    copy = tmp_path/'some folder'/'my weights.bin'
    copy.parent.mkdir()
    shutil.copy(MODELS_DIR/SHIPPED[name], copy)
    a, b = pretrained(name, 'cpu'), pretrained(copy, 'cpu')
    keys = ('kind', 'pixel_nm', 'prep', 'recipe')
    assert {k: b.info[k] for k in keys} == {k: a.info[k] for k in keys}
    img = np.random.default_rng(0).poisson(200, (96, 160)).astype(np.float32)
    for px in (None, a.info['pixel_nm']*1.7):  # uncalibrated, and resampled to the model's pixel size
        np.testing.assert_allclose(segment(b, img, px, progress=False), segment(a, img, px, progress=False), atol=1e-6)


@pytest.mark.slow
def test_export_of_a_copied_file_needs_no_flags(tmp_path):
    from temrf.export import export_cmd
    copy = tmp_path/'lr.pth'
    shutil.copy(MODELS_DIR/SHIPPED['lr-au'], copy)
    export_cmd(str(copy), str(tmp_path/'pkg'))
    rdf = (tmp_path/'pkg'/'rdf.yaml').read_text()
    assert 'name: temrf lr\n' in rdf and f"scale: {pretrained('lr-au').info['pixel_nm']}" in rdf
    assert 'low-resolution (amplitude contrast)' in (tmp_path/'pkg'/'README.md').read_text()
