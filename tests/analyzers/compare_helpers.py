"""Comparison helper shared by the analyzer tests."""


def assert_same_result(a, b, atol=1e-5):
    """Equal JSON results up to float32 rounding (products summed in another order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_result(a[key], b[key], atol)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_result(x, y, atol)
    elif isinstance(a, float) and isinstance(b, float):
        assert abs(a - b) <= atol, (a, b)
    else:
        assert a == b
