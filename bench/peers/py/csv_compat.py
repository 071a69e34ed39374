"""Item 4: CodeCarbon's own code reads trainmeter's CSV export.

  python csv_compat.py --cli build/bin/trainmeter --report runs/x.json --workdir DIR

1. `trainmeter export REPORT --format csv -o DIR/emissions.csv`.
2. CodeCarbon's EmissionsData is built from each row (typed by its own field annotations).
3. CodeCarbon's FileOutput.has_valid_headers() checks the file's header against EmissionsData;
   FileOutput.out() then appends a CodeCarbon row to trainmeter's file (append mode), which it
   only does without backing the file up when the headers match.
4. CodeCarbon's dashboard (codecarbon.viz): carbonboard.render_app(df) builds the app from the
   file as `carbonboard --filepath` does, and the Data loaders its callbacks call are run:
   get_project_data, get_project_summary, get_global_emissions_choropleth_data,
   get_regional_emissions_choropleth_data, get_cloud_emissions_barchart_data.
5. The values CodeCarbon gets are compared with trainmeter's report: country, energy, emissions,
   duration.
Prints one JSON object: each check's result (ok / the exception) and the value comparison.
"""

import argparse
import dataclasses
import json
import math
import os
import shutil
import subprocess
import traceback
import typing

import common


def attempt(fn):
    try:
        return {"ok": True, "value": fn()}
    except Exception as e:
        return {"ok": False, "error": "%s: %s" % (type(e).__name__, e),
                "where": traceback.format_exc().strip().splitlines()[-3:]}


def typed_row(row, cls):
    """A CSV row typed the way CodeCarbon's fields are annotated (empty -> None)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        v = row.get(f.name)
        if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
            out[f.name] = None
        elif hints.get(f.name) is float:
            out[f.name] = float(v)
        else:
            out[f.name] = str(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    common.quiet()
    csv_dir = os.path.join(a.workdir, "csv-compat")
    shutil.rmtree(csv_dir, ignore_errors=True)
    os.makedirs(csv_dir)
    path = os.path.join(csv_dir, "emissions.csv")
    cmd = [a.cli, "export", a.report, "--format", "csv", "-o", path]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    res = {"command": " ".join(cmd[1:]), "export_rc": p.returncode, "export_stderr": p.stderr[-2000:]}
    if p.returncode != 0:
        common.emit(res)
        return
    with open(path) as f:
        res["csv"] = f.read()
    with open(a.report) as f:
        rep = json.load(f)

    import pandas as pd
    from codecarbon import __version__ as cc_version
    from codecarbon.output_methods.emissions_data import EmissionsData
    from codecarbon.output_methods.file import FileOutput

    res["codecarbon_version"] = cc_version
    df = pd.read_csv(path)
    fields = [f.name for f in dataclasses.fields(EmissionsData)]
    res["columns"] = {"trainmeter": list(df.columns), "codecarbon": fields,
                      "missing": [c for c in fields if c not in df.columns],
                      "extra": [c for c in df.columns if c not in fields],
                      "same_order": list(df.columns) == fields}
    rows = df.to_dict("records")
    ed = attempt(lambda: [EmissionsData(**typed_row(r, EmissionsData)) for r in rows])
    res["emissions_data"] = {"ok": ed["ok"], "error": ed.get("error"), "rows": len(rows)}
    fo = FileOutput("emissions.csv", csv_dir, on_csv_write="append")
    if ed["ok"]:
        data = ed["value"][0]
        res["has_valid_headers"] = attempt(lambda: fo.has_valid_headers(data))
        size_before = os.path.getsize(path)
        res["file_output_append"] = attempt(lambda: fo.out(data, None))
        backups = [f for f in os.listdir(csv_dir) if f != "emissions.csv"]
        after = pd.read_csv(path)
        res["file_output_append"].update(
            rows_after=len(after), backed_up_files=backups, grew=os.path.getsize(path) > size_before,
            appended_row_equals_first=bool(after.iloc[-1].astype(str).equals(after.iloc[0].astype(str)))
            if len(after) == 2 else None)
        # Leave one row (trainmeter's) for the dashboard.
        df.to_csv(os.path.join(csv_dir, "dash.csv"), index=False)

    dash_df = pd.read_csv(os.path.join(csv_dir, "dash.csv")) if ed["ok"] else df
    dash = {}

    def render():
        from codecarbon.viz.carbonboard import render_app

        render_app(dash_df)
        return "built"

    dash["render_app"] = attempt(render)
    try:
        from codecarbon.viz.data import Data

        d = Data()
        project = str(dash_df.project_name.iloc[0])
        pdata = attempt(lambda: d.get_project_data(dash_df, project))
        dash["get_project_data"] = {"ok": pdata["ok"], "error": pdata.get("error")}
        if pdata["ok"]:
            summary = attempt(lambda: d.get_project_summary(pdata["value"].data))
            dash["get_project_summary"] = summary
        energy = float(dash_df.energy_consumed.iloc[0])
        glob = attempt(lambda: d.get_global_emissions_choropleth_data(energy))
        dash["get_global_emissions_choropleth_data"] = {
            "ok": glob["ok"], "error": glob.get("error"),
            "own_country_row": next((c for c in glob.get("value") or []
                                     if c["iso_code"] == dash_df.country_iso_code.iloc[0]), None)}
        reg = attempt(lambda: d.get_regional_emissions_choropleth_data(
            energy, str(dash_df.country_iso_code.iloc[0])))
        dash["get_regional_emissions_choropleth_data"] = {"ok": reg["ok"], "error": reg.get("error")}
        cloud = attempt(lambda: d.get_cloud_emissions_barchart_data(
            energy, str(dash_df.on_cloud.iloc[0]), str(dash_df.cloud_provider.iloc[0]),
            str(dash_df.cloud_region.iloc[0])))
        dash["get_cloud_emissions_barchart_data"] = {"ok": cloud["ok"], "error": cloud.get("error")}
    except Exception as e:
        dash["import"] = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    res["dashboard"] = dash

    # What CodeCarbon read vs what trainmeter's report says.
    r0 = rows[0]
    carbon = rep.get("carbon") or {}
    energy = rep.get("energy") or {}
    res["values"] = {
        "country_iso_code": {"codecarbon_read": r0.get("country_iso_code"),
                             "report": carbon.get("region")},
        "country_name": {"codecarbon_read": r0.get("country_name"),
                         "report": carbon.get("region_name")},
        "energy_consumed_kwh": {"codecarbon_read": r0.get("energy_consumed"),
                                "report_total_kwh_with_pue": energy.get("total_kwh_with_pue"),
                                "report_carbon_energy_kwh_with_pue": carbon.get("energy_kwh_with_pue")},
        "emissions_kg": {"codecarbon_read": r0.get("emissions"), "report": carbon.get("co2e_kg")},
        "duration_s": {"codecarbon_read": r0.get("duration"),
                       "report": (rep.get("run") or {}).get("duration_s")},
        "pue": {"codecarbon_read": r0.get("pue"), "report": energy.get("pue")},
    }
    if "get_project_summary" in dash and dash["get_project_summary"]["ok"]:
        s = dash["get_project_summary"]["value"]
        res["values"]["dashboard_summary"] = {
            "country_iso_code": s.get("country_iso_code"), "country_name": s.get("country_name"),
            "energy_consumed": s["last_run"]["energy_consumed"],
            "emissions": s["last_run"]["emissions"]}
    res.pop("csv_raw", None)
    common.emit(json.loads(json.dumps(res, default=str)))


if __name__ == "__main__":
    main()
