"""`load_study_checkpoint` reads the study's whole-module checkpoints (legacy and zip) without the study's classes.

A separate Python process plays the study's notebook: its `__main__` defines `ResidualBlock`, `UNet` and
`UNet_MaxPool` with the attribute names and creation order of the study's published code, builds networks of that
shape, and `torch.save`s them whole in both formats, with reference logits for a fixed input. This process never
defines those classes, yet must get a `ResUNet` with the same logits.
"""
import json, pickle, subprocess, sys, textwrap
import pytest, torch
from torch import nn
from temrf.checkpoints import load_study_checkpoint
from temrf.model import Arch, ResUNet, count_params

STUDY_MAIN = textwrap.dedent('''
    import json, sys, types, warnings
    import torch
    from torch import nn
    warnings.filterwarnings('ignore')  # torch warns that __main__ classes have no source to record

    class ResidualBlock(nn.Module):
        def __init__(self, in_channels, out_channels, kernel_size1, kernel_size2, dil=1):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size1, padding=dil*(kernel_size1-1)//2, dilation=dil)
            self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size2, padding=dil*(kernel_size2-1)//2, dilation=dil)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.bn2 = nn.BatchNorm2d(out_channels)
            self.relu1 = nn.ReLU()
            self.relu2 = nn.ReLU()
            self.conv_add = nn.Conv2d(in_channels, out_channels, kernel_size=1)
            for m in self.modules():
                if isinstance(m, nn.Conv2d): nn.init.kaiming_normal_(m.weight)
                elif isinstance(m, nn.BatchNorm2d): nn.init.constant_(m.weight, 1); nn.init.constant_(m.bias, 0)
        def forward(self, x):
            out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
            out += self.conv_add(x)
            return self.relu2(out)

    class UNet(nn.Module):
        def __init__(self, num_blocks, filter_sequence, max_pool_sequence, dilation_list=None, num_classes=2):
            super().__init__()
            dil = dilation_list or [1]*(num_blocks+1)
            self.downs, self.ups = nn.ModuleList(), nn.ModuleList()
            self.pools, self.upsamples = nn.ModuleList(), nn.ModuleList()
            in_channels = 1
            for i in range(num_blocks):
                self.downs.append(ResidualBlock(in_channels, filter_sequence[i], 3, 3, dil[i]))
                in_channels = filter_sequence[i]
                self.pools.append(nn.MaxPool2d(kernel_size=max_pool_sequence[i], stride=max_pool_sequence[i]))
            for i in reversed(range(num_blocks)):
                self.ups.append(ResidualBlock(filter_sequence[i]+filter_sequence[i+1], filter_sequence[i], 3, 3, dil[i]))
                self.upsamples.append(nn.Upsample(scale_factor=max_pool_sequence[i]))
            self.bottleneck = ResidualBlock(filter_sequence[num_blocks-1], filter_sequence[num_blocks], 3, 3, dil[num_blocks])
            self.final_conv = nn.Conv2d(filter_sequence[0], num_classes, kernel_size=1)
            self.num_blocks = num_blocks
        def forward(self, x):
            skips = []
            for i in range(self.num_blocks):
                x = self.downs[i](x); skips.append(x); x = self.pools[i](x)
            x = self.bottleneck(x)
            skips = skips[::-1]
            for idx in range(self.num_blocks):
                x = self.upsamples[idx](x)
                x = self.ups[idx](torch.cat((skips[idx], x), dim=1))
            return self.final_conv(x)

    class UNet_MaxPool(nn.Module):
        def __init__(self, num_blocks, filter_sequence, pool_sequence, num_classes=2):
            super().__init__()
            f, p = filter_sequence, pool_sequence
            self.down1 = ResidualBlock(1, f[0], 3, 3)
            self.pool1 = nn.MaxPool2d(kernel_size=p[0], stride=p[0])
            self.down2 = ResidualBlock(f[0], f[1], 3, 3)
            self.pool2 = nn.MaxPool2d(kernel_size=p[1], stride=p[1])
            self.bottleneck = ResidualBlock(f[1], f[2], 3, 3)
            self.upsample2 = nn.Upsample(scale_factor=p[1])
            self.up2 = ResidualBlock(f[1]+f[2], f[1], 3, 3)
            self.upsample1 = nn.Upsample(scale_factor=p[0])
            self.up1 = ResidualBlock(f[0]+f[1], f[0], 3, 3)
            self.final_conv = nn.Conv2d(f[0], num_classes, kernel_size=1)
        def forward(self, x):
            s1 = self.down1(x); x = self.pool1(s1)
            s2 = self.down2(x); x = self.pool2(s2)
            x = self.bottleneck(x)
            x = self.up2(torch.cat((s2, self.upsample2(x)), dim=1))
            x = self.up1(torch.cat((s1, self.upsample1(x)), dim=1))
            return self.final_conv(x)

    # torch < 1.4 pickled each layer's `_backend`, a call to torch.nn.backends.thnn._get_thnn_function_backend, as the
    # published high-resolution checkpoints show; torch 2 has no such module. Recreate that record for one fixture.
    thnn = types.ModuleType('torch.nn.backends.thnn')
    def _get_thnn_function_backend(): return None
    _get_thnn_function_backend.__module__ = thnn.__name__
    thnn._get_thnn_function_backend = _get_thnn_function_backend
    sys.modules[thnn.__name__] = thnn
    class THNNFunctionBackend:
        def __reduce__(self): return (_get_thnn_function_backend, ())

    out, specs = sys.argv[1], json.loads(sys.argv[2])
    FILTERS = [4, 8, 16, 32, 64, 128, 256, 512]
    refs, inits = {}, {}
    for name, s in specs.items():
        torch.manual_seed(s['seed'])
        if s['cls'] == 'UNet': model = UNet(s['n'], FILTERS, s['pools'], s.get('dilations'))
        else: model = UNet_MaxPool(s['n'], FILTERS, s['pools'])
        inits[name] = {k: v.clone() for k, v in model.state_dict().items()}
        with torch.no_grad():  # a trained-looking network: BN statistics and affine parameters away from their init
            for bn in [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]:
                bn.running_mean.uniform_(-0.5, 0.5); bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5); bn.bias.uniform_(-0.2, 0.2); bn.num_batches_tracked.fill_(7)
        model.eval()
        x = torch.randn(2, 1, *s['size'])
        with torch.no_grad(): refs[name] = dict(x=x, logits=model(x), keys=list(model.state_dict()))
        torch.save(model, f'{out}/{name}_zip.h5')
        if s.get('thnn'):
            for m in model.modules(): m._backend = THNNFunctionBackend()
        torch.save(model, f'{out}/{name}_legacy.h5', _use_new_zipfile_serialization=False)
        torch.save(model.state_dict(), f'{out}/UNet_b{s["n"]}_Au_m{"".join(map(str, s["pools"]))}_run1_{name}_weights.h5')
    torch.save(dict(refs=refs, inits=inits), f'{out}/reference.pt')
''')

SPECS = {
    'unet_m24': dict(cls='UNet', n=2, pools=[2, 4], seed=752, size=(40, 24)),
    'unet_m224': dict(cls='UNet', n=3, pools=[2, 2, 4], seed=2245, size=(32, 48)),
    'unet_m2222': dict(cls='UNet', n=4, pools=[2, 2, 2, 2], seed=140, size=(32, 16)),
    'unet_d112': dict(cls='UNet', n=2, pools=[2, 2], dilations=[1, 1, 2], seed=9213, size=(24, 28)),
    'maxpool_m42': dict(cls='UNet_MaxPool', n=2, pools=[4, 2], seed=956, size=(32, 24), thnn=True),
}

@pytest.fixture(scope='module')
def study(tmp_path_factory):
    "Directory of checkpoints pickled by a process whose `__main__` holds the study's classes, and their references"
    out = tmp_path_factory.mktemp('study')
    r = subprocess.run([sys.executable, '-c', STUDY_MAIN, str(out), json.dumps(SPECS)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, torch.load(out/'reference.pt')

def test_study_classes_absent_here():
    assert not any(hasattr(sys.modules['__main__'], c) for c in ('UNet', 'UNet_MaxPool', 'ResidualBlock'))

@pytest.mark.parametrize('fmt', ['legacy', 'zip'])
@pytest.mark.parametrize('name', list(SPECS))
def test_same_logits(study, name, fmt):
    out, ref = study
    path, s = out/f'{name}_{fmt}.h5', SPECS[name]
    assert path.read_bytes()[:2] == (b'PK' if fmt == 'zip' else b'\x80\x02')  # really the two formats
    model = load_study_checkpoint(path)
    assert type(model) is ResUNet and not model.training
    assert model.config == dict(n_blocks=s['n'], pools=s['pools'], dilations=s.get('dilations'), filters=4,
                                n_classes=2, pool='max', kernel=3)
    assert count_params(model) == {2: 8_074, 3: 32_730, 4: 130_682}[s['n']]
    with torch.no_grad(): torch.testing.assert_close(model(ref['refs'][name]['x']), ref['refs'][name]['logits'])
    sd = model.state_dict()
    assert sd['downs.0.bn1.num_batches_tracked'] == 7 and not torch.all(sd['bottleneck.bn2.running_var'] == 1)

@pytest.mark.parametrize('name', [n for n, s in SPECS.items() if s['cls'] == 'UNet'])
def test_state_dict_layout_and_init(study, name):
    "Same keys in the same order as the study's UNet, and under the same seed the same initial weights, bit for bit"
    _, ref = study
    s = SPECS[name]
    torch.manual_seed(s['seed'])
    sd = ResUNet(Arch(s['pools'], s.get('dilations'), n_blocks=s['n'])).state_dict()
    assert list(sd) == ref['refs'][name]['keys']
    for k, v in ref['inits'][name].items(): torch.testing.assert_close(sd[k], v, rtol=0, atol=0, msg=k)

def test_plain_state_dicts(study):
    out, ref = study
    for name in ('unet_m24', 'maxpool_m42'):  # pools from the study-style file name, keys from either layout
        (path,) = out.glob(f'*_{name}_weights.h5')
        model = load_study_checkpoint(path)
        assert model.config['pools'] == SPECS[name]['pools']
        with torch.no_grad(): torch.testing.assert_close(model(ref['refs'][name]['x']), ref['refs'][name]['logits'])
    sd = torch.load(next(out.glob('*_unet_d112_weights.h5')))
    torch.save({'model': {'module.'+k: v for k, v in sd.items()}}, out/'plain.pth')  # fastai-style, DataParallel names
    with pytest.raises(ValueError, match='does not record the pooling sizes: pass pools='):
        load_study_checkpoint(out/'plain.pth')
    model = load_study_checkpoint(out/'plain.pth', pools=[2, 2], dilations=[1, 1, 2])
    with torch.no_grad(): torch.testing.assert_close(model(ref['refs']['unet_d112']['x']), ref['refs']['unet_d112']['logits'])

def test_given_arguments_must_agree(study):
    out, _ = study
    with pytest.raises(ValueError, match=r"dilations=\[1, 2, 2\] given, but the checkpoint's layers say \[1, 1, 2\]"):
        load_study_checkpoint(out/'unet_d112_zip.h5', dilations=[1, 2, 2])
    assert load_study_checkpoint(out/'unet_m24_legacy.h5', pools=(2, 4), dilations=[1, 1, 1]).config['pools'] == [2, 4]

def test_refuses_other_files(tmp_path):
    marker = tmp_path/'ran'
    class Payload:
        def __reduce__(self): return (subprocess.call, (['touch', str(marker)],))
    torch.save(Payload(), tmp_path/'payload.pt', _use_new_zipfile_serialization=False)
    with pytest.raises(pickle.UnpicklingError, match=r'checkpoint refers to \w+\.call, which load_study_checkpoint does not load'):
        load_study_checkpoint(tmp_path/'payload.pt')
    assert not marker.exists()
    torch.save(nn.Sequential(nn.Conv2d(1, 2, 3)), tmp_path/'seq.pt')
    with pytest.raises(ValueError, match='not a study UNet'):
        load_study_checkpoint(tmp_path/'seq.pt')
    torch.save(torch.zeros(3), tmp_path/'tensor.pt')
    with pytest.raises(TypeError, match='holds a Tensor'):
        load_study_checkpoint(tmp_path/'tensor.pt')


def test_study_checkpoint_gets_the_study_preparation(study):
    "A study checkpoint through `pretrained`/`segment` sees median-filtered images scaled to [0, 1], as it was trained"
    import numpy as np
    from temrf.infer import pretrained, segment
    from temrf.preprocess import study_prep
    out, _ = study
    m = pretrained(out/'unet_m24_zip.h5', 'cpu')
    assert m.info['prep'] == 'study' and m.info['kind'] == 'hr'
    img = np.random.default_rng(0).poisson(50, (64, 64)).astype(np.float32)
    x = study_prep(img)
    with torch.no_grad(): want = torch.softmax(m(torch.from_numpy(x)[None, None]), 1)[0, 1].numpy()
    torch.testing.assert_close(torch.from_numpy(segment(m, img, xrays=False, progress=False)), torch.from_numpy(want), atol=1e-5, rtol=0)
