#!/usr/bin/env python3
"""Sums the TRX reports under a folder and prints the one line CI reads: 'tests: N passed, N failed[, N skipped]'.
Exits 1 when a test failed or no test ran at all."""
import sys, pathlib, xml.etree.ElementTree as ET

ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
files = list(pathlib.Path(sys.argv[1]).rglob("*.trx"))
for f in files:
    root = ET.parse(f).getroot()
    for r in root.iterfind(".//t:UnitTestResult", ns):
        outcome = r.get("outcome")
        if outcome == "Passed":
            passed += 1
        elif outcome in ("NotExecuted", "Inconclusive"):
            skipped += 1
        else:
            failed += 1
line = f"tests: {passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 or not files else 0)
