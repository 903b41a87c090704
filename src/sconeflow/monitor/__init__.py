"""Model monitoring: read data-capture files, baseline, violations, plots and an HTML report.

What SageMaker Model Monitor does for data quality, on captured image-classification traffic:

- :mod:`.captures` reads capture JSONL (AWS's format) from the store, an ``s3://`` prefix or a folder;
- :mod:`.features` turns records into a feature table (image statistics, probabilities, confidence);
- :mod:`.baseline` writes ``statistics.json`` / ``constraints.json`` in Model Monitor's schema;
- :mod:`.violations` compares a window of traffic with the baseline (``constraint_violations.json``)
  and records a monitoring execution;
- :mod:`.report` draws the plots and the self-contained HTML report;
- :mod:`.schedule` runs monitoring periodically as a background service.
"""

from __future__ import annotations
