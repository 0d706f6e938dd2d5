"""model_profile: the one lookup of a model by key that the chain and the Werkzeuge share."""
from __future__ import annotations

import pytest

from assistant.model_choice import model_profile
from assistant.settings import load_settings


@pytest.mark.parametrize("key, expected", [(None, "default"), ("", "default"), ("extraktiv", "extraktiv")])
def test_known_keys_and_the_default(tmp_path, key, expected):
    s = load_settings(tmp_path)
    want = s.llm.default if expected == "default" else expected
    got_key, profile = model_profile(s, key)
    assert got_key == want and profile is s.llm.models[want]


def test_an_unknown_key_is_a_value_error_that_names_it(tmp_path):
    with pytest.raises(ValueError, match="gibtsnicht"):
        model_profile(load_settings(tmp_path), "gibtsnicht")
