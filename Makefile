# Two commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test lint typecheck unit tools chart-files clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(BIN)/dli-exporter --demo --web.listen-address 127.0.0.1:9469

## promtool/prometheus and amtool/alertmanager come from Debian's packages; installed when missing.
tools:
	@./scripts/install-tools.sh

## The Helm chart ships copies of the rules and dashboards (Helm reads only files inside the
## chart); tests/test_chart.py fails when they differ from prometheus/ and grafana/dashboards/.
chart-files:
	cp prometheus/alerts.yml prometheus/rules.yml charts/dli-exporter/files/prometheus/
	rm -f charts/dli-exporter/files/dashboards/*.json
	cp grafana/dashboards/*.json charts/dli-exporter/files/dashboards/

lint: $(STAMP)
	$(BIN)/ruff format --check exporter tests grafana bench
	$(BIN)/ruff check exporter tests grafana bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: tools lint typecheck unit

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
