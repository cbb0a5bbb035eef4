"""DTOs of the library pipelines: import, app mapping (links) and the dependency contract.

`DependencyRequirementsDTO` is the versioned contract consumers rely on: its fields are closed
(`extra="forbid"`) and it checks that the top-level state is the worst binding's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from domain.library.dependency_model import (
    DEPENDENCY_CONTRACT_VERSION,
    PLATFORM_FORMS,
    PYTHON_VERSION_FORMS,
    ValidationState,
    is_platform,
    is_python_version,
)
from entrypoints.http.schemas import DeletedDTO

ValidationStateName = Literal["resolved", "unknown_profile", "invalid_profile", "profile_conflict"]
_RANK = {state.value: state.rank for state in ValidationState}


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- dependency-requirements contract ------------------------------------------------------


class DependencyValidationErrorDTO(_Closed):
    code: str
    scope: Literal["binding", "profile", "requirement", "model"]
    binding_id: str | None
    field: str | None
    message: str


class DependencyRequirementDTO(_Closed):
    name: str
    extras: list[str] = []
    pin: str = Field(description="An exact pin, e.g. '==0.32.4'")
    markers: str | None = Field(default=None, description="PEP 508 environment markers")
    python_requires: str | None = None
    specifier: str = Field(description="pip-installable line: name[extras]pin; markers")
    applies: bool | None = Field(default=None, description="Markers on the requested platform (null: unknown)")


class RequirementGroupDTO(_Closed):
    binding_id: str
    profile_id: str
    profile_version: int | None
    environment_kind: str
    platform_selector: str
    backend_key: str
    validation_state: ValidationStateName
    validation_errors: list[DependencyValidationErrorDTO] = []
    requirements: list[DependencyRequirementDTO] = []


class DependencyRequirementsDTO(_Closed):
    dependency_contract_version: int = Field(ge=1, description="Bumped on any incompatible change")
    model_id: str
    platform: str
    backend_key: str | None = None
    validation_state: ValidationStateName
    validation_errors: list[DependencyValidationErrorDTO] = []
    requirement_groups: list[RequirementGroupDTO] = []

    @model_validator(mode="after")
    def _top_level_is_the_worst_binding(self) -> "DependencyRequirementsDTO":
        expected = max((_RANK[g.validation_state] for g in self.requirement_groups), default=0)
        if _RANK[self.validation_state] != expected:
            raise ValueError("validation_state must be the worst state of the requirement groups")
        return self


class DependencyQuery(_Closed):
    platform: str | None = Field(default=None, description=f"{PLATFORM_FORMS} (default: this machine)")
    backend: str | None = Field(default=None, description="Only bindings for this backend key (default: all)")
    python: str | None = Field(default=None, description=f"The consumer's Python version: {PYTHON_VERSION_FORMS}")
    expected_contract_version: int | None = Field(
        default=None, description=f"409 unless it equals {DEPENDENCY_CONTRACT_VERSION}"
    )

    # The same checks as `mlxm deps show --platform/--python` (domain.library.dependency_model): a value the
    # markers cannot compare is a 422 naming the forms, not an answer where every marker is "unknown".
    # An empty one (`?platform=`) is not given: this machine / this Python, as it always was.
    @field_validator("platform")
    @classmethod
    def _a_platform(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None and not is_platform(value):
            raise PydanticCustomError("platform", "{value} is not a platform: use {forms}",
                                      {"value": repr(value), "forms": PLATFORM_FORMS})
        return value.strip() if value is not None else None

    @field_validator("python")
    @classmethod
    def _a_python_version(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None and not is_python_version(value.strip()):
            raise PydanticCustomError("python_version", "{value} is not a Python version: use {forms}",
                                      {"value": repr(value), "forms": PYTHON_VERSION_FORMS})
        return value.strip() if value is not None else None


# -- delete ----------------------------------------------------------------------------------


class ModelDeletedDTO(DeletedDTO):
    kept: list[str] = Field(default_factory=list, description=(
        "Only when something stayed on disk: what and why, one `<path>: <reason>` each (a folder, file or link "
        "the user put in place of mlxm's link, an in-place import, a folder outside the library; a kept folder "
        "at models/<key> reads `<path> (<size>): <reason>`); as `mlxm rm`"))


# -- import ----------------------------------------------------------------------------------


class ImportModelRequest(_Closed):
    path: str = Field(description="An absolute path to a model folder or a single .safetensors file")
    name: str | None = Field(default=None, description="The model id (normalised); default: the folder name")
    move: bool = False
    in_place: bool = Field(default=False, description="Register the folder where it is (never deleted by mlxm)")
    allow_pickle: bool = Field(default=False, description="Accept .bin/.pt/.pth/.ckpt weights (can run code)")


class ImportModelResponse(BaseModel):
    id: str
    created: bool = Field(description="False when the same content was already in the library")
    mode: Literal["copy", "move", "in-place"]
    content_sha256: str
    type: str | None
    family: str | None
    confidence: float | None
    review_reasons: list[str]
    local_path: str | None
    managed: bool
    size_bytes: int | None
    files: int


# -- links ---------------------------------------------------------------------------------


class LinkEntryDTO(BaseModel):
    model_id: str
    rule_target: str
    path: str = Field(description="The file's path inside the model")
    source: str
    target: str
    action: Literal["create", "exists", "conflict", "broken"]


class LinkPreviewDTO(BaseModel):
    app: str
    root: str
    summary: dict[str, int]
    entries: list[LinkEntryDTO]
    problem: str | None = None  # set when the app root cannot hold links; apply answers 400


class LinkApplyRequest(_Closed):
    on_conflict: Literal["skip", "overwrite", "rename"] = "skip"


class LinkMadeDTO(BaseModel):
    model_id: str
    target: str
    method: Literal["symlink", "hardlink", "copy"]


class LinkSkippedDTO(BaseModel):
    model_id: str
    target: str
    reason: str


class LinkApplyDTO(BaseModel):
    app: str
    root: str
    on_conflict: str
    created: list[LinkMadeDTO]
    replaced: list[LinkMadeDTO]
    existing: int
    skipped: list[LinkSkippedDTO]
    renamed: dict[str, str]

    @classmethod
    def from_report(cls, report) -> "LinkApplyDTO":
        """From `application.library.mapping.ApplyReport`."""
        return cls(
            app=report.app,
            root=report.root,
            on_conflict=report.policy.value,
            created=[LinkMadeDTO(model_id=e.model_id, target=e.target_path, method=m) for e, m in report.created],
            replaced=[LinkMadeDTO(model_id=e.model_id, target=e.target_path, method=m) for e, m in report.replaced],
            existing=len(report.existing),
            skipped=[LinkSkippedDTO(model_id=e.model_id, target=e.target_path, reason=r) for e, r in report.skipped],
            renamed=dict(report.renamed),
        )


class LinkCleanDTO(BaseModel):
    app: str
    removed: list[str]
    forgotten: list[str]
