"""An independent DLI stand-in for acceptance tests, with its signatures checked by the SDK.

The stand-in serves a fixed job set (``data``) over the DLI API (``server``), recomputing every
request's signature with the official ``huaweicloudsdkcore`` signer; ``expect`` says what the
exporter must publish for each job. It shares NO code with the exporter on purpose: nothing here
imports ``exporter.*``, so the exporter is checked against an outside reading of the API rather
than against itself. Only the test modules import the exporter, to drive it.
"""
