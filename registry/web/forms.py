"""The register form: a form with the fields of the PUT body, turned into that body, and the
service's field errors (the API's `errors[]`) put back beside the fields they name."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FILE_ROWS = 4  # empty file rows the form offers (script adds more)
_CONFIG = ("entry_script", "conda_env", "docker_image")
_META_TEXT = ("input_description", "output_description", "index_page_file")
_PATHS = {
    "name": "name",
    "version": "version",
    "body": "form",
    "model_config": "type",
    "model_config.type": "type",
    "model_config.description": "description",
    "model_config.private": "private",
    "model_config.inference_properties": "conda_env",
    "model_config.training_properties": "train_conda_env",
    "model_files": "files",
    "model_metainfo": "index_page_file",
    **{f"model_config.inference_properties.{key}": key for key in _CONFIG},
    **{f"model_config.training_properties.{key}": f"train_{key}" for key in _CONFIG},
    **{
        f"model_metainfo.{key}": key
        for key in (*_META_TEXT, "input_types", "output_types", "input_languages", "output_languages")
    },
    "model_metainfo.num_params": "num_params",
}
_FILE_KEY = re.compile(r"^model_files\[(['\"])(.*)\1\]")


@dataclass
class RegisterForm:
    """What was typed, as the form shows it again."""

    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    files: list[tuple[str, str]] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)  # field id -> rules
    general: list[str] = field(default_factory=list)  # errors no field of the form holds

    @classmethod
    def empty(cls) -> RegisterForm:
        return cls(
            values={"private": "true", "index_page_file": "index.md", "type": "SEQ2SEQ"},
            files=[("index.md", "")],
        )

    @classmethod
    def parse(cls, single: Mapping[str, str], multi: Mapping[str, Sequence[str]]) -> RegisterForm:
        keys = (
            "name", "version", "type", "description", "private", "num_params",
            "input_languages", "output_languages", *_CONFIG, *(f"train_{k}" for k in _CONFIG), *_META_TEXT,
        )  # fmt: skip
        values = {key: (single.get(key) or "").strip() for key in keys}
        names, urls = list(multi.get("file_name", ())), list(multi.get("file_url", ()))
        files = [(n.strip(), u.strip()) for n, u in zip(names, urls, strict=False)]
        lists = {key: [v for v in multi.get(key, ()) if v] for key in ("input_types", "output_types")}
        return cls(values=values, lists=lists, files=files)

    def body(self) -> dict[str, Any]:
        """The PUT body the form stands for (empty fields left out, so the rules name them)."""
        v = self.values
        config: dict[str, Any] = {"type": v["type"], "private": v.get("private") == "true"}
        if v["description"]:
            config["description"] = v["description"]
        inference = {key: v[key] for key in _CONFIG if v[key]}
        if inference:
            config["inference_properties"] = inference
        training = {key: v[f"train_{key}"] for key in _CONFIG if v[f"train_{key}"]}
        if training:
            config["training_properties"] = training
        meta: dict[str, Any] = {key: v[key] for key in _META_TEXT if v[key]}
        for side in ("input", "output"):
            if self.lists.get(f"{side}_types"):
                meta[f"{side}_types"] = self.lists[f"{side}_types"]
            languages = [x.strip() for x in v[f"{side}_languages"].split(",") if x.strip()]
            if languages:
                meta[f"{side}_languages"] = languages
        if v["num_params"]:
            meta["num_params"] = int(v["num_params"]) if v["num_params"].isdigit() else v["num_params"]
        return {
            "model_config": config,
            "model_files": {name: url for name, url in self.files if name or url},
            "model_metainfo": meta,
        }

    def add_errors(self, errors: Sequence[tuple[str, str]]) -> None:
        """Put each (field path, rule) beside the form field that holds it."""
        for path, rule in errors:
            target = self._field_of(path)
            if target is None:
                self.general.append(f"{path}: {rule}")
            else:
                self.errors.setdefault(target, []).append(rule)

    def _field_of(self, path: str) -> str | None:
        file_key = _FILE_KEY.match(path)
        if file_key:
            name = file_key.group(2)
            for index, (row_name, _) in enumerate(self.files):
                if row_name == name or (name.endswith("?...") and row_name.startswith(name[:-4])):
                    return f"file_url_{index}"
            return "files"
        bare = re.sub(r"\[[^\]]*\]", "", path)
        while bare:
            if bare in _PATHS:
                return _PATHS[bare]
            bare = bare.rpartition(".")[0]
        return None

    def rows(self) -> list[tuple[str, str]]:
        """The file rows to show: what was typed, and a few empty ones."""
        blanks = max(1, FILE_ROWS - len(self.files))
        return [*self.files, *([("", "")] * blanks)]
