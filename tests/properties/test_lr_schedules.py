"""Learning-rate schedules: every registered one stays in (0, base]; the IWAE schedule is the paper's."""

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaezoo.parts.lr_schedules import IWAE_EPOCHS, LR_SCHEDULES, iwae_stepped


@pytest.mark.parametrize("name", LR_SCHEDULES.names())
@given(base=st.floats(1e-6, 1.0), epochs=st.integers(1, 10_000), data=st.data())
def test_every_schedule_starts_at_base_and_never_rises_above_it(name, base, epochs, data):
    schedule = LR_SCHEDULES.get(name)
    epoch = data.draw(st.integers(0, epochs - 1))
    assert schedule(base, 0, epochs) == pytest.approx(base)
    assert 0 < schedule(base, epoch, epochs) <= base * (1 + 1e-12)


@pytest.mark.parametrize("name", LR_SCHEDULES.names())
@given(base=st.floats(1e-6, 1.0), epochs=st.integers(2, 5_000))
def test_every_schedule_is_non_increasing(name, base, epochs):
    schedule = LR_SCHEDULES.get(name)
    rates = [schedule(base, e, epochs) for e in range(epochs)]
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(rates))


def test_iwae_schedule_at_3280_epochs_is_the_papers_3_to_the_i_passes():
    rates = [iwae_stepped(1e-3, e, IWAE_EPOCHS) for e in range(IWAE_EPOCHS)]
    lengths = [len(list(group)) for _, group in itertools.groupby(rates)]
    assert IWAE_EPOCHS == 3280 and lengths == [3**i for i in range(8)]
    assert [r for r, _ in itertools.groupby(rates)] == pytest.approx([1e-3 * 10 ** (-i / 7) for i in range(8)])


@given(st.integers(2, 3280))
def test_iwae_schedule_compressed_to_fewer_epochs_still_ends_at_a_tenth(epochs):
    assert math.isclose(iwae_stepped(1.0, epochs - 1, epochs), 0.1)
