"""npfunc.nn against torch's documented semantics at corners probing found wrong (regressions):
derivatives at kinks, the eps of cosine similarity, tied weights through dtype casts."""
import numpy as np

import npfunc
from npfunc import nn
from npfunc.nn import functional as F


def test_elu_derivative_at_zero_is_alpha():
    """elu'(0) must be alpha (torch elu_backward: alpha*exp(0) for x <= 0; C^1 for alpha=1), not alpha/2."""
    assert float(npfunc.grad(F.elu)(np.float64(0.0))) == 1.0
    assert float(npfunc.grad(lambda x: F.elu(x, alpha=2.0))(np.float64(0.0))) == 2.0


def test_relu6_and_hardtanh_derivative_zero_at_the_clip_boundaries():
    """torch's hardtanh_backward (and relu6 = hardtanh(0, 6)) gives derivative 0 at x == min_val and x == max_val."""
    assert float(npfunc.grad(F.relu6)(np.float64(0.0))) == 0.0
    assert float(npfunc.grad(F.relu6)(np.float64(6.0))) == 0.0
    assert float(npfunc.grad(F.hardtanh)(np.float64(1.0))) == 0.0
    assert float(npfunc.grad(F.hardtanh)(np.float64(-1.0))) == 0.0


def test_cosine_similarity_clamps_each_norm_separately():
    """torch F.cosine_similarity = x1.x2 / (max(||x1||, eps) * max(||x2||, eps)); small parallel vectors give 1."""
    x = np.array([[1e-5, 0.0]])
    np.testing.assert_allclose(F.cosine_similarity(x, x), [1.0])


def test_double_keeps_tied_weights_tied():
    """Module.double()/float()/to() convert in place (torch); tied weights must stay one parameter."""
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 3, rng=0)
            self.out = nn.Linear(3, 5, bias=False, rng=1)
            self.out.weight = self.emb.weight

        def forward(self, i):
            return self.out(self.emb(i))

    model = Tied().double()
    assert model.out.weight is model.emb.weight
    assert len(list(model.parameters())) == 1
