"""The cluster example in deploy/ speaks the settings model: every KIPORTAL_* variable of its
environment files and compose file and every key of its kiportal.toml names a real setting (a
renamed setting breaks this test, not an installation), and loaded together they give the
cluster they promise. (The settings model ignores unknown keys, so only this walk catches a typo.)"""
from __future__ import annotations

import re
import tomllib
import types
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from assistant.settings import Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NOT_SETTINGS = {"KIPORTAL_CONFIG"}  # the config file's path, read by assistant.settings._config_file
EXAMPLE_FOR = {"secrets.env": "secrets.env.example"}  # not committed; its example is
KIPORTAL_IMAGE = "kiportal:local"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def env_file(name: str) -> dict[str, str]:
    """KEY=VALUE lines (comments and blank lines skipped), as Compose reads an env_file."""
    out = {}
    for line in (DEPLOY / EXAMPLE_FOR.get(name, name)).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def service_env(service: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    files = service.get("env_file", [])
    for name in [files] if isinstance(files, str) else files:
        env.update(env_file(name))
    extra = service.get("environment") or {}
    if isinstance(extra, list):
        extra = dict(item.partition("=")[::2] for item in extra)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _unwrap(annotation):
    """The model (or dict value type) behind Optional/Annotated wrappers."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _unwrap(args[0])
    return annotation


def setting_path_problem(parts: list[str], model: type[BaseModel] = Settings) -> str | None:
    """None if ``parts`` (lower-case keys) name a setting of ``model``, else what is wrong."""
    current = model
    for n, part in enumerate(parts):
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                return f"{'.'.join(parts[:n + 1])}: no such setting"
            current = _unwrap(current.model_fields[part].annotation)
        elif typing.get_origin(current) is dict:
            current = _unwrap(typing.get_args(current)[1])  # a free key (e.g. llm.models.<key>)
        else:
            return f"{'.'.join(parts[:n + 1])}: {'.'.join(parts[:n])} has no sub-keys"
    return None


def toml_paths(data: dict, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every leaf key of a TOML document; tables of free maps (group_roles) end at the map."""
    out = []
    for key, value in data.items():
        path = [*prefix, key]
        if isinstance(value, dict) and setting_path_problem(path) is None and _is_model_or_model_map(path):
            out.extend(toml_paths(value, tuple(path)))
        else:
            out.append(path)
    return out


def _is_model_or_model_map(path: list[str]) -> bool:
    current = Settings
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            current = _unwrap(current.model_fields[part].annotation)
        else:
            current = _unwrap(typing.get_args(current)[1])
    if isinstance(current, type) and issubclass(current, BaseModel):
        return True
    if typing.get_origin(current) is dict:
        value = _unwrap(typing.get_args(current)[1])
        return isinstance(value, type) and issubclass(value, BaseModel)
    return False


def kiportal_services() -> dict[str, dict]:
    return {name: svc for name, svc in compose()["services"].items() if svc.get("image") == KIPORTAL_IMAGE}


# -- the walk itself must catch renamed keys ---------------------------------------------------------
@pytest.mark.parametrize("parts, ok", [
    (["vector", "mode"], True), (["app_db_url"], True), (["models_path"], True),
    (["llm", "models", "gpu", "base_url"], True), (["auth", "group_roles"], True),
    (["vector", "modus"], False), (["auth", "secret", "x"], False), (["llm", "models", "gpu", "url"], False),
    (["chroma"], False),
])
def test_the_walk_knows_the_model(parts, ok):
    assert (setting_path_problem(parts) is None) == ok


def test_every_kiportal_variable_names_a_setting():
    services = kiportal_services()
    assert {"portal-a", "portal-b", "worker", "models"} <= set(services)
    seen = set()
    for name, svc in compose()["services"].items():
        for key in service_env(svc):
            if not key.startswith("KIPORTAL_") or key in NOT_SETTINGS:
                continue
            seen.add(key)
            problem = setting_path_problem(key.removeprefix("KIPORTAL_").lower().split("__"))
            assert problem is None, f"{name}: {key}: {problem}"
    assert {"KIPORTAL_APP_DB_URL", "KIPORTAL_AUTH__SECRET", "KIPORTAL_VECTOR__MODE", "KIPORTAL_MODELS_PATH"} <= seen


def test_every_toml_key_names_a_setting():
    data = tomllib.loads((DEPLOY / "kiportal.toml").read_text(encoding="utf-8"))
    paths = toml_paths(data)
    assert ["llm", "models", "gpu", "mode"] in paths and ["auth", "group_roles"] in paths
    for path in paths:
        assert setting_path_problem(path) is None, f"kiportal.toml: {setting_path_problem(path)}"


def test_nginx_template_fills_in_only_secrets_it_is_given():
    template = (DEPLOY / "nginx" / "kiportal.conf.template").read_text(encoding="utf-8")
    proxy_env = service_env(compose()["services"]["proxy"])
    for var in re.findall(r"\$\{(\w+)\}", template):
        assert var in proxy_env, f"nginx template uses ${{{var}}}, the proxy service does not get it"


@pytest.fixture
def cluster_settings(monkeypatch):
    """The settings a portal container of the example starts with (secrets filled in)."""
    env = service_env(kiportal_services()["portal-a"])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KIPORTAL_CONFIG", str(DEPLOY / "kiportal.toml"))
    return env


def test_loaded_together_they_are_the_promised_cluster(cluster_settings, monkeypatch):
    from assistant.cluster import check_cluster_settings
    from ui.header_auth import check_header_settings

    services = compose()["services"]
    s = load_settings()
    assert s.cluster and s.vector.mode == "chroma_http" and s.vector.host == "chroma"
    assert s.models_dir == Path("/models") and s.auth.mode == "header"
    assert s.llm.default in s.llm.models
    gpu = s.llm.models[s.llm.default]
    assert gpu.mode == "openai" and gpu.base_url.startswith("http://llm:")
    assert gpu.api_key_env in cluster_settings  # the key the llama.cpp server is started with
    assert services["proxy"]["networks"]["kiportal"]["ipv4_address"] in s.auth.trusted_proxies
    check_header_settings(s.auth)
    with pytest.raises(RuntimeError, match="auth.secret"):  # the example's secret is empty: refused
        check_cluster_settings(s)
    monkeypatch.setenv("KIPORTAL_AUTH__SECRET", "f" * 64)
    check_cluster_settings(load_settings())
    config = cluster_settings["KIPORTAL_CONFIG"]
    for name, svc in kiportal_services().items():  # every kiportal container mounts the file it is told to read
        assert any(str(v).endswith(f":{config}:ro") for v in svc["volumes"]), name
