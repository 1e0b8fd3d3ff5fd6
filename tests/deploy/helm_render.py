"""A small renderer for deploy/helm/autoglm, used because `helm` is not in Debian 12 or on PyPI
(tests/deploy/test_k8s.py runs the real `helm template` instead when helm is on PATH).
It supports exactly the template forms the chart uses and fails on any other, so the chart
cannot silently grow constructs this check does not understand:
  {{ .Values.a.b }}, {{ .Release.Name }}, {{ .Chart.Name }}, "{{ ... }}" inside strings,
  {{- toYaml .Values.a | nindent N }}.
Owned by the deploy thread."""

import pathlib
import re

import yaml

ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}")


def lookup(path, context):
    value = context
    for part in path.strip(".").split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"template value .{path.strip('.')} is not defined")
        value = value[part]
    return value


def scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_action(expression, context):
    m = re.fullmatch(r"toYaml (\.[\w.-]+) \| nindent (\d+)", expression)
    if m:
        text = yaml.safe_dump(lookup(m.group(1), context), sort_keys=False).rstrip("\n")
        pad = " " * int(m.group(2))
        return "\n" + "\n".join(pad + line for line in text.splitlines())
    if re.fullmatch(r"\.[\w.-]+", expression):
        value = lookup(expression, context)
        if isinstance(value, (dict, list)):
            raise ValueError(f"{expression} is a mapping; use toYaml")
        return scalar(value)
    raise ValueError(f"template construct not supported by this renderer: {{{{ {expression} }}}}")


def render_template(text, context):
    out = []
    position = 0
    for m in ACTION.finditer(text):
        before = text[position:m.start()]
        if m.group(1) == "-":
            before = before.rstrip()
        out.append(before)
        out.append(render_action(m.group(2), context))
        position = m.end()
        if m.group(3) == "-":
            while position < len(text) and text[position].isspace():
                position += 1
    out.append(text[position:])
    return "".join(out)


def render_chart(chart_dir, release_name="autoglm", overrides=None):
    """{template file name: [documents]} with values.yaml (deep-merged with overrides)."""
    chart_dir = pathlib.Path(chart_dir)
    chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    for key, value in (overrides or {}).items():
        values[key] = value
    context = {"Values": values, "Release": {"Name": release_name},
               "Chart": {"Name": chart["name"], "Version": chart["version"]}}
    rendered = {}
    for template in sorted((chart_dir / "templates").glob("*.yaml")):
        text = render_template(template.read_text(), context)
        rendered[template.name] = [d for d in yaml.safe_load_all(text) if d is not None]
    return rendered, values
