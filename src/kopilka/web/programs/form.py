"""The promotion form: its rows generated from the rules model, read back into a
promotion document, and the model's error paths mapped onto the form's fields.

A condition row is a kind (a key of ``Condition``) with the parameters its type needs
(a list of values, a flag, a range, dates, a birthday window, a basket threshold) and a
NOT toggle; rows are joined by ``all`` or ``any``.  An effect row is an effect kind with
the fields of its model.  Both tables are built from ``rules.model`` itself, so a new
key or effect of a known shape appears in the form without a change here.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from kopilka.domain.rules import model as m

# --- the schema of the rows ----------------------------------------------------------

SHAPES = {
    m.Range: "range",
    m.DateRange: "dates",
    m.BirthdayWindow: "birthday",
    m.BasketCondition: "basket",
}
# The inputs each shape of condition shows.
SHAPE_PARAMS = {
    "values": ("values",),
    "values_or_any": ("values",),
    "flag": ("flag",),
    "range": ("min", "max"),
    "dates": ("from", "to"),
    "birthday": ("before", "after"),
    "basket": ("min", "max", "qmin", "qmax", "cats"),
}
COMBINATORS = ("all", "any", "not_")
SCHEDULE_KEYS = ("weekday", "hours")


def _shape(annotation: Any) -> str:
    args = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    is_list = any(get_origin(a) is list for a in args)
    if is_list and bool in args:
        return "values_or_any"
    if is_list:
        return "values"
    if args == [bool]:
        return "flag"
    for a in args:
        if a in SHAPES:
            return SHAPES[a]
    raise ValueError(f"no form shape for {annotation!r}")


def condition_kinds() -> dict[str, str]:
    """Every key of a condition (but the combinators) -> its shape."""
    out = {}
    for name, f in m.Condition.model_fields.items():
        if name in COMBINATORS:
            continue
        out[name] = _shape(f.annotation)
    return out


CONDITION_KINDS = condition_kinds()
LINE_KINDS = {k: v for k, v in CONDITION_KINDS.items() if k in m.LINE_FIELDS}


@dataclass(frozen=True)
class EffectParam:
    name: str
    type: str  # decimal, int, text, items
    required: bool
    default: Any = None


def _effect_models() -> list[type[BaseModel]]:
    union = get_args(m.Effect)[0]
    return [a for a in get_args(union)]


def effect_kinds() -> dict[str, tuple[EffectParam, ...]]:
    """Every effect kind -> the parameters of its model."""
    out: dict[str, tuple[EffectParam, ...]] = {}
    for model in _effect_models():
        kind = get_args(model.model_fields["kind"].annotation)[0]
        params = []
        for name, f in model.model_fields.items():
            if name == "kind":
                continue
            ann = f.annotation
            if get_origin(ann) in (typing.Union, types.UnionType):
                a = next(x for x in get_args(ann) if x is not type(None))
            else:
                a = ann
            if get_origin(a) is typing.Annotated:
                a = get_args(a)[0]
            if get_origin(a) is list:
                typ = "items"
            elif a is int:
                typ = "int"
            elif a is str:
                typ = "text"
            else:
                typ = "decimal"
            default = None if f.is_required() else f.default
            params.append(EffectParam(name, typ, f.is_required(), default))
        out[str(kind)] = tuple(params)
    return out


EFFECT_KINDS = effect_kinds()
EFFECT_PARAM_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(p.name for ps in EFFECT_KINDS.values() for p in ps)
)
PERIODS = get_args(m.UsageLimit.model_fields["period"].annotation)
LIMIT_ROWS = 3


def kinds_using(param: str) -> str:
    """The effect kinds (space-separated) one parameter input serves."""
    return " ".join(k for k, ps in EFFECT_KINDS.items() if any(p.name == param for p in ps))


def condition_kinds_using(param: str, kinds: dict[str, str]) -> str:
    return " ".join(k for k, shape in kinds.items() if param in SHAPE_PARAMS[shape])


# --- the form's state ------------------------------------------------------------------

Form = dict[str, str]
Multi = dict[str, list[str]]


@dataclass
class FormState:
    """What the form shows: ``values`` (field -> text), row indexes, errors."""

    values: Form = field(default_factory=dict)
    weekdays: list[str] = field(default_factory=list)
    conditions: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    effects: list[int] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    representable: bool = True


class FormInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _split(text: str) -> list[str]:
    return [x.strip() for x in re.split(r"[,;\n]", text) if x.strip()]


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _local(value: str | None, tz: str) -> str:
    if not value:
        return ""
    d = datetime.fromisoformat(value).astimezone(ZoneInfo(tz))
    return d.strftime("%Y-%m-%dT%H:%M")


# --- document -> form ------------------------------------------------------------------


def _rows_of(cond: dict[str, Any] | None) -> tuple[str, list[tuple[bool, dict[str, Any]]]] | None:
    """(mode, [(negated, {key: value})]) of a condition the form can show, or None."""
    if not cond:
        return "all", []
    if set(cond) == {"all"} or set(cond) == {"any"}:
        mode = next(iter(cond))
        items = cond[mode]
        # "any of these" with a schedule is stored as all: [{any: rows}, weekday, hours]
        anys = [x for x in items if set(x) == {"any"}]
        rest = [x for x in items if set(x) != {"any"}]
        if (
            mode == "all"
            and len(anys) == 1
            and rest
            and all(len(x) == 1 and next(iter(x)) in SCHEDULE_KEYS for x in rest)
        ):
            inner = _rows_of(anys[0])
            if inner is None or any(next(iter(x)) in SCHEDULE_KEYS for _, x in inner[1]):
                return None  # a weekday inside the "any" would read as the schedule
            return "any", inner[1] + [(False, x) for x in rest]
    else:
        mode, items = "all", [{k: v} for k, v in cond.items()]
    rows: list[tuple[bool, dict[str, Any]]] = []
    for item in items:
        neg = False
        if set(item) == {"not"}:
            neg, item = True, item["not"]
        if mode == "all" and not neg:
            for k, v in item.items():
                if k in ("all", "any", "not"):
                    return None
                rows.append((False, {k: v}))
            continue
        if len(item) != 1 or next(iter(item)) in ("all", "any", "not"):
            return None
        rows.append((neg, item))
    return mode, rows


def _row_values(prefix: str, key: str, value: Any, shape: str) -> Form:
    out = {f"{prefix}_kind": key}
    if shape in ("values", "values_or_any"):
        out[f"{prefix}_values"] = ", ".join(value) if isinstance(value, list) else ""
    elif shape == "flag":
        out[f"{prefix}_flag"] = "yes" if value else "no"
    elif shape == "range":
        out[f"{prefix}_min"] = _text(value.get("min"))
        out[f"{prefix}_max"] = _text(value.get("max"))
    elif shape == "dates":
        out[f"{prefix}_from"] = _text(value.get("from"))
        out[f"{prefix}_to"] = _text(value.get("to"))
    elif shape == "birthday":
        out[f"{prefix}_before"] = _text(value.get("days_before", 0))
        out[f"{prefix}_after"] = _text(value.get("days_after", 0))
    elif shape == "basket":
        amount, qty = value.get("amount") or {}, value.get("quantity") or {}
        out[f"{prefix}_min"] = _text(amount.get("min"))
        out[f"{prefix}_max"] = _text(amount.get("max"))
        out[f"{prefix}_qmin"] = _text(qty.get("min"))
        out[f"{prefix}_qmax"] = _text(qty.get("max"))
        out[f"{prefix}_cats"] = ", ".join((value.get("lines") or {}).get("category", []))
    return out


def _items_text(items: list[dict[str, Any]]) -> str:
    out = []
    for it in items:
        what = "category" if it.get("category") else "sku"
        out.append(f"{it.get('quantity', 1)} x {what}: {', '.join(it.get(what) or [])}")
    return "\n".join(out)


def _scheduled(p: dict[str, Any]) -> bool:
    """Is the promotion's ``when`` the form's "any of these, on this schedule"?"""
    when = p.get("when") or {}
    return set(when) == {"all"} and any(set(x) == {"any"} for x in when["all"])


def from_promotion(p: dict[str, Any], tz: str) -> FormState:
    """The form of a stored promotion (its JSON)."""
    s = FormState()
    v = s.values
    for name in ("id", "name", "description", "group"):
        v[name] = _text(p.get(name))
    v["priority"] = _text(p.get("priority", 0))
    v["max_discount"] = _text(p.get("max_discount"))
    held = p.get("holdout_percent")
    v["holdout_percent"] = _text(held) if held not in (None, 0, "0", "0.00") else ""
    for flag in ("enabled", "personal", "exclusive"):
        if p.get(flag, flag == "enabled"):
            v[flag] = "1"
    v["funded_by"] = _text(p.get("funded_by") or "program")
    v["burn_at"] = _text(p.get("burn_at") or "anywhere")
    v["starts_at"] = _local(p.get("starts_at"), tz)
    v["ends_at"] = _local(p.get("ends_at"), tz)
    when = _rows_of(p.get("when"))
    lines = _rows_of(p.get("lines"))
    if when is None or lines is None:
        s.representable = False
        when, lines = when or ("all", []), lines or ("all", [])
    v["when_mode"], v["lines_mode"] = when[0], lines[0]
    i = 0
    for neg, item in when[1]:
        key, value = next(iter(item.items()))
        if key in SCHEDULE_KEYS and not neg and (when[0] == "all" or _scheduled(p)):
            if key == "weekday":
                s.weekdays = list(value)
            else:
                v["sched_hours"] = ", ".join(value)
            continue
        if key not in CONDITION_KINDS:
            s.representable = False
            continue
        v.update(_row_values(f"c{i}", key, value, CONDITION_KINDS[key]))
        if neg:
            v[f"c{i}_not"] = "1"
        s.conditions.append(i)
        i += 1
    for j, (neg, item) in enumerate(lines[1]):
        key, value = next(iter(item.items()))
        v.update(_row_values(f"l{j}", key, value, LINE_KINDS.get(key, "values")))
        if neg:
            v[f"l{j}_not"] = "1"
        s.lines.append(j)
    for j, e in enumerate(p.get("effects", [])):
        v[f"e{j}_kind"] = e.get("kind", "")
        for name, value in e.items():
            if name == "kind":
                continue
            v[f"e{j}_{name}"] = _items_text(value) if name == "items" else _text(value)
        s.effects.append(j)
    for j, lim in enumerate(p.get("limits", [])):
        v[f"limit{j}_count"] = _text(lim.get("count"))
        v[f"limit{j}_period"] = _text(lim.get("period"))
    budget = p.get("budget") or {}
    v["budget_money"] = _text(budget.get("money"))
    v["budget_points"] = _text(budget.get("points"))
    return s


def new_form() -> FormState:
    s = FormState(values={"enabled": "1", "priority": "0", "when_mode": "all"})
    s.effects = [0]
    s.values["e0_kind"] = "line_discount"
    return s


# --- form -> document ------------------------------------------------------------------


def _indexes(form: Form, prefix: str) -> list[int]:
    found = set()
    pat = re.compile(rf"^{prefix}(\d+)_kind$")
    for k in form:
        mt = pat.match(k)
        if mt:
            found.add(int(mt[1]))
    return sorted(found)


def _range(lo: str, hi: str) -> dict[str, str] | None:
    out = {}
    if lo.strip():
        out["min"] = lo.strip()
    if hi.strip():
        out["max"] = hi.strip()
    return out or None


def _condition_value(form: Form, prefix: str, shape: str, errors: dict[str, str]) -> Any:
    def g(name: str) -> str:
        return form.get(f"{prefix}_{name}", "").strip()

    if shape == "values":
        return _split(g("values")) or []
    if shape == "values_or_any":
        return _split(g("values")) or True
    if shape == "flag":
        return g("flag") != "no"
    if shape == "range":
        return _range(g("min"), g("max")) or {}
    if shape == "dates":
        out = {}
        if g("from"):
            out["from"] = g("from")
        if g("to"):
            out["to"] = g("to")
        return out
    if shape == "birthday":
        return {"days_before": g("before") or "0", "days_after": g("after") or "0"}
    if shape == "basket":
        out2: dict[str, Any] = {}
        amount = _range(g("min"), g("max"))
        qty = _range(g("qmin"), g("qmax"))
        if amount:
            out2["amount"] = amount
        if qty:
            out2["quantity"] = qty
        cats = _split(g("cats"))
        if cats:
            out2["lines"] = {"category": cats}
        return out2
    raise AssertionError(shape)


# Where a sub-path of a condition's value shows its message.
_SUB = {
    "range": {"min": "min", "max": "max"},
    "dates": {"from": "from", "to": "to"},
    "birthday": {"days_before": "before", "days_after": "after"},
    "basket": {
        "amount.min": "min",
        "amount.max": "max",
        "amount": "min",
        "quantity.min": "qmin",
        "quantity.max": "qmax",
        "quantity": "qmin",
        "lines": "cats",
    },
}


@dataclass
class Built:
    """The promotion read from the form, and where each of its paths is on the form."""

    promotion: dict[str, Any]
    fields: dict[str, str]


def _group(
    form: Form,
    prefix: str,
    kinds: dict[str, str],
    base: str,
    extra: list[tuple[dict[str, Any], str]],
    fields: dict[str, str],
    errors: dict[str, str],
) -> dict[str, Any] | None:
    """The condition of one block of rows (+ ``extra`` keys ANDed, with their fields)."""
    mode = form.get(f"{base}_mode", "all")
    mode = mode if mode in ("all", "any") else "all"
    rows: list[tuple[dict[str, Any], int, str, bool]] = []
    for i in _indexes(form, prefix):
        key = form.get(f"{prefix}{i}_kind", "")
        if not key:
            continue
        if key not in kinds:
            errors[f"{prefix}{i}_kind"] = "unknown kind"
            continue
        value = _condition_value(form, f"{prefix}{i}", kinds[key], errors)
        neg = form.get(f"{prefix}{i}_not") == "1"
        item = {key: value}
        rows.append(({"not": item} if neg else item, i, key, neg))
    items = [r[0] for r in rows]
    paths: list[str] = []
    if not items and not extra:
        return None
    if mode == "any" and len(items) > 1 and extra:
        top = [{"any": items}] + [e for e, _ in extra]
        cond: dict[str, Any] = {"all": top}
        paths = [f"{base}.all[0].any[{k}]" for k in range(len(items))]
        extra_paths = [f"{base}.all[{k + 1}]" for k in range(len(extra))]
    else:
        every = items + [e for e, _ in extra]
        if len(every) == 1:
            cond = every[0]
            paths = [base] * len(items)
            extra_paths = [base] * len(extra)
        else:
            m_ = mode if not extra else "all"
            cond = {m_: every}
            paths = [f"{base}.{m_}[{k}]" for k in range(len(items))]
            extra_paths = [f"{base}.{m_}[{k + len(items)}]" for k in range(len(extra))]
    for (_item, i, key, neg), path in zip(rows, paths, strict=True):
        p = f"{path}.not" if neg else path
        main = f"{prefix}{i}_" + SHAPE_PARAMS[kinds[key]][0]
        fields[path] = main
        fields[p] = main
        fields[f"{p}.{key}"] = main
        for sub, name in _SUB.get(kinds[key], {}).items():
            fields[f"{p}.{key}.{sub}"] = f"{prefix}{i}_{name}"
    for (e, name), path in zip(extra, extra_paths, strict=True):
        key = next(iter(e))
        fields[f"{path}.{key}"] = name
    return cond


def _items(text: str) -> list[dict[str, Any]]:
    out = []
    for line in [x for x in re.split(r"[;\n]", text) if x.strip()]:
        mt = re.match(r"^\s*(\d+)\s*[x×*]\s*(category|sku)\s*:\s*(.+)$", line.strip())
        if not mt:
            raise ValueError("one set item a line: 2 x category: cheese, wine")
        out.append({mt[2]: _split(mt[3]), "quantity": mt[1]})
    return out


def to_promotion(form: Form, weekdays: list[str], tz: str) -> Built:
    """The promotion the form describes; ``FormInvalid`` for what cannot be read at all
    (a date that is not a date); everything else is left to the model's validation."""
    errors: dict[str, str] = {}
    fields: dict[str, str] = {}
    p: dict[str, Any] = {}

    def g(name: str) -> str:
        return form.get(name, "").strip()

    for name in ("id", "name"):
        p[name] = g(name)
    for name in ("description", "group", "max_discount", "holdout_percent"):
        if g(name):
            p[name] = g(name)
    p["priority"] = g("priority") or "0"
    p["enabled"] = g("enabled") == "1"
    p["personal"] = g("personal") == "1"
    p["exclusive"] = g("exclusive") == "1"
    # Coalition (ADR 0024): only written when not the default, so documents stay short.
    if g("funded_by") and g("funded_by") != "program":
        p["funded_by"] = g("funded_by")
    if g("burn_at") and g("burn_at") != "anywhere":
        p["burn_at"] = g("burn_at")
    for name in ("starts_at", "ends_at"):
        if g(name):
            try:
                d = datetime.fromisoformat(g(name))
            except ValueError:
                errors[name] = "not a date and time"
                continue
            if d.tzinfo is None:
                d = d.replace(tzinfo=ZoneInfo(tz))
            p[name] = d.isoformat()
    extra: list[tuple[dict[str, Any], str]] = []
    if weekdays:
        extra.append(({"weekday": weekdays}, "sched_weekday"))
    if g("sched_hours"):
        extra.append(({"hours": _split(g("sched_hours"))}, "sched_hours"))
    when = _group(form, "c", CONDITION_KINDS, "when", extra, fields, errors)
    if when is not None:
        p["when"] = when
    lines = _group(form, "l", LINE_KINDS, "lines", [], fields, errors)
    if lines is not None:
        p["lines"] = lines
    effects: list[dict[str, Any]] = []
    for i in _indexes(form, "e"):
        kind = g(f"e{i}_kind")
        if not kind:
            continue
        if kind not in EFFECT_KINDS:
            errors[f"e{i}_kind"] = "unknown kind"
            continue
        e: dict[str, Any] = {"kind": kind}
        at = f"effects[{len(effects)}]"
        fields[at] = f"e{i}_kind"
        for param in EFFECT_KINDS[kind]:
            raw = g(f"e{i}_{param.name}")
            fields[f"{at}.{param.name}"] = f"e{i}_{param.name}"
            if not raw:
                continue
            if param.type == "items":
                try:
                    e["items"] = _items(raw)
                except ValueError as exc:
                    errors[f"e{i}_items"] = str(exc)
            else:
                e[param.name] = raw
        # "give either percent or amount": next to the first of them
        if any(pp.name == "percent" for pp in EFFECT_KINDS[kind]):
            fields[at] = f"e{i}_percent"
        effects.append(e)
    p["effects"] = effects
    limits: list[dict[str, str]] = []
    for i in range(LIMIT_ROWS):
        count, period = g(f"limit{i}_count"), g(f"limit{i}_period")
        if not count and not period:
            continue
        fields[f"limits[{len(limits)}].count"] = f"limit{i}_count"
        fields[f"limits[{len(limits)}].period"] = f"limit{i}_period"
        fields[f"limits[{len(limits)}]"] = f"limit{i}_count"
        limits.append({"count": count, "period": period or "ever"})
    if limits:
        p["limits"] = limits
    budget = {}
    if g("budget_money"):
        budget["money"] = g("budget_money")
    if g("budget_points"):
        budget["points"] = g("budget_points")
    if budget:
        p["budget"] = budget
    fields.update({"budget.money": "budget_money", "budget.points": "budget_points"})
    fields["budget"] = "budget_money"
    if errors:
        raise FormInvalid(errors)
    return Built(p, fields)


_STEP = re.compile(r"(\.[^.\[]+|\[[^\]]*\])$")


def field_of(path: str, fields: dict[str, str]) -> str:
    """The form field showing the problem at ``path``: the longest known prefix, else the
    top-level name (``starts_at``), else "" (shown above the form)."""
    p = path
    while p:
        if p in fields:
            return fields[p]
        shorter = _STEP.sub("", p)
        if shorter == p:
            break
        p = shorter
    top = re.split(r"[.\[]", path, maxsplit=1)[0]
    if top in ("id", "name", "description", "priority", "group", "max_discount"):
        return top
    if top in ("holdout_percent", "funded_by", "burn_at"):
        return top
    if top in ("starts_at", "ends_at"):
        return top
    if top == "effects":
        return "effects"
    return ""


def errors_by_field(problems: list[dict[str, Any]], fields: dict[str, str]) -> dict[str, str]:
    """``[{"field": path, "detail": message}]`` -> {form field: message} ("" = general)."""
    out: dict[str, str] = {}
    for prob in problems:
        path = str(prob.get("field", ""))
        name = field_of(path, fields)
        msg = str(prob.get("detail", ""))
        if name == "":
            msg = f"{path}: {msg}" if path and path != "body" else msg
        if name in out:
            if msg not in out[name]:
                out[name] += "; " + msg
        else:
            out[name] = msg
    return out


def state_of(form: Form, weekdays: list[str]) -> FormState:
    """The form as typed (to show again)."""
    s = FormState(values=dict(form), weekdays=list(weekdays))
    s.conditions = [i for i in _indexes(form, "c")]
    s.lines = [i for i in _indexes(form, "l")]
    s.effects = [i for i in _indexes(form, "e")]
    return s
