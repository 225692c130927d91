"""Quadrature rules integrate what they should."""

import numpy as np
import pytest

import ntk_theory as nt


def test_rules():
    q = nt.box((0, 0), (1, 2), 8)
    assert abs(q.integrate(q.points[:, 0] ** 3 * q.points[:, 1] ** 2) - 0.25 * 8 / 3) < 1e-13
    assert abs(nt.interval(0, 1, 200, rule="uniform").weights.sum() - 1) < 1e-14
    s = nt.sphere(3, 500)
    np.testing.assert_allclose(np.linalg.norm(s.points, axis=1), 1.0, rtol=1e-14)
    b = nt.box_boundary((0, 0), (1, 1), 5)
    assert abs(b.weights.sum() - 4) < 1e-13 and b.normals.shape == (20, 2)
    assert nt.box((0,), (1,), 16, rule="sobol").n == 16


def test_bad_input():
    with pytest.raises(ValueError, match="lower < upper"):
        nt.box((1,), (0,), 4)
    with pytest.raises(ValueError, match="positive integer"):
        nt.interval(0, 1, 0)
