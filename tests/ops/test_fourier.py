import numpy as np

from labram_jax.ops import fourier


def _reference(x):
    """§4.4 with numpy: full FFT per patch, z-score per sample over (channels, patches, bins), ddof=1."""
    b, c, a, p = x.shape
    spectrum = np.fft.fft(x, axis=-1)
    amp, phase = np.abs(spectrum), np.angle(spectrum)
    z = lambda v: (v - v.mean(axis=(1, 2, 3), keepdims=True)) / v.std(axis=(1, 2, 3), ddof=1, keepdims=True)
    return z(amp).reshape(b, c * a, p), z(phase).reshape(b, c * a, p)


def test_targets_match_numpy_fft_and_zscore():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 200))
    amp, phase = fourier.fourier_targets(x.astype(np.float32), np.ones((2, 12), bool))
    ref_amp, ref_phase = _reference(x)
    np.testing.assert_allclose(np.asarray(amp), ref_amp, rtol=1e-4, atol=1e-4)

    # Real bins (DC, Nyquist) sit exactly on the +-pi branch cut, where float32 and float64 FFTs may
    # land on opposite sides: compare raw phases on the circle, then the z-scoring on our own phases.
    _, raw_phase = fourier.fourier_spectrum(x.astype(np.float32).reshape(2, 12, 200))
    raw_phase = np.asarray(raw_phase, np.float64)
    np.testing.assert_allclose(
        np.exp(1j * raw_phase), np.exp(1j * np.angle(np.fft.fft(x, axis=-1))).reshape(2, 12, 200), atol=1e-4
    )
    z = (raw_phase - raw_phase.mean(axis=(1, 2), keepdims=True)) / raw_phase.std(axis=(1, 2), ddof=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(phase), z, rtol=1e-4, atol=1e-4)
    assert ref_phase.shape == z.shape


def test_spectrum_is_full_dft_with_phase_in_half_open_interval():
    t = np.arange(200) / 200.0
    x = np.cos(2 * np.pi * 10 * t)[None]
    amp, phase = (np.asarray(v) for v in fourier.fourier_spectrum(x.astype(np.float32)))
    assert amp.shape == (1, 200)
    # A 10 Hz cosine over 1 s puts N/2 = 100 into bins 10 and 190 (the mirrored upper half is kept).
    np.testing.assert_allclose(amp[0, [10, 190]], [100.0, 100.0], rtol=1e-4)
    assert np.all(phase > -np.pi - 1e-6) and np.all(phase <= np.pi + 1e-6)


def test_padding_is_excluded_from_zscore():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 3, 200)).astype(np.float32)
    padded = np.concatenate([x, 100 * rng.standard_normal((1, 1, 3, 200)).astype(np.float32)], axis=1)
    padded = np.concatenate([padded, rng.standard_normal((1, 3, 2, 200)).astype(np.float32)], axis=2)
    mask = np.zeros((1, 3, 5), bool)
    mask[:, :2, :3] = True
    amp, phase = fourier.fourier_targets(x, np.ones((1, 6), bool))
    amp_p, phase_p = fourier.fourier_targets(padded, mask.reshape(1, -1))
    real = mask.reshape(-1)
    np.testing.assert_allclose(np.asarray(amp_p)[0, real], np.asarray(amp)[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(phase_p)[0, real], np.asarray(phase)[0], rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(amp_p)[0, ~real] == 0)
