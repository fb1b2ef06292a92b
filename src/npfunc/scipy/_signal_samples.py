"""Registry samples for the ``npfunc.scipy.signal`` twins (composites named
``npfunc.scipy.signal.<name>``; see ``_linalg_samples`` for what the
generated tests check)."""
from __future__ import annotations

import numpy as np

from ..core.primitive import Composite, Sample
from ..primitives.filtering import stable_denominator
from ..primitives.sampling import FLOATS, array
from . import _signal_filter as F
from . import _signal_resample as R
from . import _signal_savgol as G
from . import _signal_spectral as S


def _register(name, target, samples, notes=""):
    Composite(f"npfunc.scipy.signal.{name}", target, samples=samples, notes=notes)


def _lfilter_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3,), dt), stable_denominator(rng, 2, dt) * 2, array(rng, (8,), dt)),
                Sample(array(rng, (2,), dt), stable_denominator(rng, 3, dt), array(rng, (6, 2), dt), axis=0,
                       label="axis 0")]
    out += [Sample(array(rng, (3,)), stable_denominator(rng, 2), array(rng, (2, 7)), array(rng, (2, 2)),
                   label="zi"),
            Sample(array(rng, (4,)), np.array([2.0]), array(rng, (6,)), label="FIR"),
            Sample(array(rng, (2,)), stable_denominator(rng, 3), array(rng, (2,)), array(rng, (3,)),
                   label="zi longer than the signal"),
            Sample(array(rng, (2,)) + 0.5j, stable_denominator(rng, 1), array(rng, (5,)), label="complex")]
    return out


def _lfilter_call(b, a, x, zi=None, *, axis=-1):
    return F.lfilter(b, a, x, axis=axis, zi=zi)


def _sos(rng, sections, dt=np.float64):
    """Sections without their a0 column (always 1, so the tests do not perturb it)."""
    rows = []
    for _ in range(sections):
        rows.append(np.concatenate([array(rng, (3,)), stable_denominator(rng, 2)[1:]]))
    return np.array(rows, dt)


def _with_a0(sos5):
    ones = np.ones((np.shape(sos5)[0], 1), np.result_type(sos5))
    return np.concatenate([sos5[:, :3], ones, sos5[:, 3:]], axis=1)


def _sosfilt_call(sos5, x, zi=None, *, axis=-1):
    return F.sosfilt(_with_a0(sos5), x, axis=axis, zi=zi)


_register("lfilter", _lfilter_call, _lfilter_samples,
          "a * y = b * x + zi (causal convolutions after dividing by a[0]); derivatives in b, a, x, zi")
_register("sosfilt", _sosfilt_call,
          lambda rng: [Sample(_sos(rng, 2, dt), array(rng, (7,), dt)) for dt in FLOATS]
          + [Sample(_sos(rng, 2), array(rng, (5, 2)), array(rng, (2, 2, 2)), axis=0, label="zi, axis 0")],
          "cascade of lfilter sections; the a0 column must be ones")
_register("lfilter_zi", F.lfilter_zi,
          lambda rng: [Sample(array(rng, (3,), dt), stable_denominator(rng, 2, dt) * 2) for dt in FLOATS]
          + [Sample(array(rng, (4,)), stable_denominator(rng, 1), label="longer b"),
             Sample(array(rng, (1,)), stable_denominator(rng, 3), label="longer a"),
             Sample(array(rng, (2,)) + 0.5j, stable_denominator(rng, 2), label="complex")],
          "the solution of (I - companion(a).T) zi = b[1:] - a[1:] b[0] after dividing by a[0]")
_register("sosfilt_zi", lambda sos5: F.sosfilt_zi(_with_a0(sos5)),
          lambda rng: [Sample(_sos(rng, 2, dt)) for dt in FLOATS] + [Sample(_sos(rng, 1), label="one section")],
          "lfilter_zi of each section, scaled by the zero-frequency gains of the sections before it")


def _filtfilt_call(b, a, x, **kw):
    return F.filtfilt(b, a, x, **kw)


def _sosfiltfilt_call(sos5, x, **kw):
    return F.sosfiltfilt(_with_a0(sos5), x, **kw)


_register("filtfilt", _filtfilt_call,
          lambda rng: [Sample(array(rng, (3,), dt), stable_denominator(rng, 2, dt) * 2, array(rng, (12,), dt))
                       for dt in FLOATS]
          + [Sample(array(rng, (2,)), stable_denominator(rng, 1), array(rng, (8, 2)), axis=0, padtype="even",
                    padlen=3, label="axis 0, even"),
             Sample(array(rng, (3,)), stable_denominator(rng, 2), array(rng, (2, 9)), padtype="constant",
                    padlen=4, label="constant"),
             Sample(array(rng, (3,)), stable_denominator(rng, 2), array(rng, (7,)), padtype=None,
                    label="no extension"),
             Sample(array(rng, (2,)) + 0.5j, stable_denominator(rng, 1), array(rng, (9,)), label="complex")],
          "lfilter forwards and backwards over the extended signal, from lfilter_zi times the end samples")
_register("sosfiltfilt", _sosfiltfilt_call,
          lambda rng: [Sample(_sos(rng, 2, dt), array(rng, (16,), dt), padlen=6) for dt in FLOATS]
          + [Sample(_sos(rng, 2), array(rng, (9, 2)), axis=0, padtype="even", padlen=4, label="axis 0, even"),
             Sample(_sos(rng, 1), array(rng, (8,)), padtype=None, label="no extension")],
          "sosfilt forwards and backwards (explicit padlen: SciPy's default depends on which entries "
          "of sos are zero)")
_register("detrend", S.detrend,
          lambda rng: [Sample(array(rng, (9,), dt)) for dt in FLOATS]
          + [Sample(array(rng, (3, 8)), type="constant", label="constant"),
             Sample(array(rng, (10, 2)), axis=0, bp=[3, 7], label="breakpoints"),
             Sample(array(rng, (6,)) + 1j * array(rng, (6,)), label="complex")],
          "a projection with a constant design matrix")


def _welch_call(x, **kw):
    return S.welch(x, **kw)[1]


def _csd_call(x, y, **kw):
    return S.csd(x, y, **kw)[1]


_register("welch", _welch_call,
          lambda rng: [Sample(array(rng, (40,), dt), nperseg=16) for dt in FLOATS]
          + [Sample(array(rng, (2, 33)), nperseg=10, noverlap=3, nfft=12, scaling="spectrum", detrend="linear",
                    label="options"),
             Sample(array(rng, (30,)), nperseg=8, average="median", label="median"),
             Sample(array(rng, (30, 2)), nperseg=8, axis=0, window="hamming", label="axis 0"),
             Sample(array(rng, (24,)) + 1j * array(rng, (24,)), nperseg=8, label="complex, two-sided")])
def _periodogram_call(x, **kw):
    return S.periodogram(x, **kw)[1]


_register("periodogram", _periodogram_call,
          lambda rng: [Sample(array(rng, (16,), dt)) for dt in FLOATS]
          + [Sample(array(rng, (2, 12)), nfft=8, scaling="spectrum", window="hann", label="short nfft"),
             Sample(array(rng, (9, 2)), nfft=12, axis=0, detrend="linear", label="padded, axis 0"),
             Sample(array(rng, (10,)) + 1j * array(rng, (10,)), return_onesided=False, label="complex")])
_register("csd", _csd_call,
          lambda rng: [Sample(array(rng, (32,), dt), array(rng, (32,), dt), nperseg=8) for dt in FLOATS]
          + [Sample(array(rng, (2, 20)), array(rng, (24,)), nperseg=8, return_onesided=False, label="two-sided"),
             Sample(array(rng, (30,)), array(rng, (30,)), nperseg=8, average="median", label="median")])


def _stft_call(x, **kw):
    return S.stft(x, **kw)[2]


def _istft_call(z, **kw):
    return S.istft(z, **kw)[1]


_register("stft", _stft_call,
          lambda rng: [Sample(array(rng, (30,), dt), nperseg=8) for dt in FLOATS]
          + [Sample(array(rng, (2, 21)), nperseg=6, noverlap=2, boundary="even", padded=False, scaling="psd",
                    label="options"),
             Sample(array(rng, (20,)), nperseg=8, boundary="odd", detrend="constant", label="odd boundary"),
             Sample(array(rng, (16,)) + 1j * array(rng, (16,)), nperseg=8, return_onesided=False,
                    label="complex")])
_register("istft", _istft_call,
          lambda rng: [Sample((array(rng, (5, 6)) + 1j * array(rng, (5, 6))).astype(np.complex128), nperseg=8)]
          + [Sample(array(rng, (2, 5, 4)) + 1j * array(rng, (2, 5, 4)), nperseg=8, noverlap=6, scaling="psd",
                    label="stacked"),
             Sample(array(rng, (4, 5)) + 1j * array(rng, (4, 5)), nperseg=4, input_onesided=False,
                    label="two-sided")],
          "weighted overlap-add (a scatter-add, the transpose of the segment gather)")


def _conv_axes_samples(rng):
    return [Sample(array(rng, (3, 6), dt), array(rng, (3, 2), dt), axes=1) for dt in FLOATS] + [
        Sample(array(rng, (2, 5)), array(rng, (1, 3)), mode="same", axes=[-1], label="broadcast, same"),
        Sample(array(rng, (4, 5)), array(rng, (4, 2)), mode="valid", axes=(1,), label="valid"),
        Sample(array(rng, (3, 4)) + 1j, array(rng, (3, 3)), axes=1, label="complex")]


def _fftconvolve(in1, in2, **kw):
    from .signal import fftconvolve

    return fftconvolve(in1, in2, **kw)


def _oaconvolve(in1, in2, **kw):
    from .signal import oaconvolve

    return oaconvolve(in1, in2, **kw)


_register("fftconvolve", _fftconvolve, _conv_axes_samples, "axes=...: FFTs over those axes only")
_register("oaconvolve", _oaconvolve, _conv_axes_samples, "axes=...: FFTs over those axes only")


def _lombscargle_samples(rng):
    out = []
    for dt in FLOATS:
        t = np.sort(array(rng, (12,), np.float64, (0.0, 10.0))).astype(dt)
        out.append(Sample(t, array(rng, (12,), dt), np.array([0.7, 1.3, 2.1], dt)))
    t = np.sort(array(rng, (10,), np.float64, (0.0, 8.0)))
    out += [Sample(t, array(rng, (10,)), np.array([0.9, 1.7]), normalize=True, floating_mean=True,
                   label="normalized, floating mean"),
            Sample(t, array(rng, (10,)), np.array([0.9, 1.7]), weights=array(rng, (10,), np.float64, (0.5, 2.0)),
                   label="weights")]
    return out


_register("lombscargle", S.lombscargle, _lombscargle_samples,
          "SciPy's own code on traced values, given its default unit weights as a plain array")


def _upfirdn_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (4,), dt), array(rng, (7,), dt), up=3, down=2))
    out += [Sample(array(rng, (5,)), array(rng, (3, 6)), up=2, down=1, label="rows"),
            Sample(array(rng, (3,)), array(rng, (6, 2)), up=1, down=3, axis=0, label="axis 0, down only"),
            Sample(array(rng, (2,)) + 0.5j, array(rng, (5,)), up=2, down=2, label="complex filter")]
    return out


def _resample_poly_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (9,), dt), up=3, down=2))
    out += [Sample(array(rng, (2, 8)), up=2, down=3, axis=1, label="rows, down by 3/2"),
            Sample(array(rng, (7,)), up=4, down=2, padtype="mean", label="mean background, gcd 2"),
            Sample(array(rng, (7,)), up=2, down=1, padtype="median", label="median background"),
            Sample(array(rng, (6,)), array(rng, (5,)), up=2, down=1, label="the filter given as the window")]
    return out


def _resample_poly_call(x, window=None, **kw):
    """(the window, a filter given as an array, comes second in a sample: SciPy takes it by name)"""
    return R.resample_poly(x, window=window, **kw) if window is not None else R.resample_poly(x, **kw)


_register("upfirdn", R.upfirdn, _upfirdn_samples, "upsampling by stacked zeros, a full convolution, a slice")
_register("resample_poly", _resample_poly_call, _resample_poly_samples,
          "SciPy's filter design on plain values, upfirdn on the traced signal (and window)")


def _savgol_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (9,), dt), 5, 2))
    out += [Sample(array(rng, (3, 8)), 7, 3, deriv=1, delta=0.5, label="rows, first derivative"),
            Sample(array(rng, (8, 2)), 5, 2, axis=0, mode="mirror", label="axis 0, mirror"),
            Sample(array(rng, (7,)), 3, 1, mode="nearest", label="nearest"),
            Sample(array(rng, (7,)), 5, 3, deriv=2, mode="wrap", label="wrap, second derivative"),
            Sample(array(rng, (7,)), 5, 2, mode="constant", cval=0.5, label="constant")]
    return out


_register("savgol_filter", G.savgol_filter, _savgol_samples,
          "linear in the signal: np.pad as convolve1d's mode extends, a valid convolution with SciPy's "
          "coefficients; 'interp' edges by the matrices SciPy's filter gives on one window's unit signals")
