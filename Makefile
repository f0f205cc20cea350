# grpo-rm-mm: `make demo` (train + evaluate on the embedded dataset) and
# `make test` (the test suite). Both install what they need first into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.grpo-rm-mm-installed
DEMO_CONFIG ?= configs/demo/grpo-rm_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py
DEMO_CE_CONFIG ?= configs/demo/ce_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py
DEMO_VARIANT_CONFIG ?= configs/demo/grpo-rm-batch_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py
DEMO_DIR ?= work_dirs/demo
PYTEST_ARGS ?=

.PHONY: install test demo bench clean

install: $(STAMP)

# torch is pinned in requirements/cpu.txt and installed in the same resolver
# run as everything else, so nothing can pull a CUDA build of torch.
$(STAMP): setup.py requirements/runtime.txt requirements/cpu.txt requirements/tests.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-r requirements/cpu.txt -r requirements/runtime.txt \
		-r requirements/tests.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps \
		--no-build-isolation -e .
	touch $@

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

# The paper's GRPO-RM, the study's best variant (advantages scaled per batch,
# README "Does it work?") and their cross-entropy twin, validated every 100
# iterations; ends with a table of the final mIoU / background IoU /
# foreground mIoU and $(DEMO_DIR)/curves.png (loss, validation mIoU, GRPO-RM
# diagnostics). Run again, it trains afresh over the previous demo
# (--overwrite).
demo: install
	$(PY) tools/make_demo_data.py data/synthetic_voc
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR)/grpo-rm \
		--overwrite --cfg-options train_cfg.val_interval=100
	$(PY) tools/train.py $(DEMO_VARIANT_CONFIG) \
		--work-dir $(DEMO_DIR)/grpo-rm-batch \
		--overwrite --cfg-options train_cfg.val_interval=100
	$(PY) tools/train.py $(DEMO_CE_CONFIG) --work-dir $(DEMO_DIR)/ce \
		--overwrite --cfg-options train_cfg.val_interval=100
	$(PY) tools/analyze_logs.py $(DEMO_DIR)/grpo-rm $(DEMO_DIR)/grpo-rm-batch \
		$(DEMO_DIR)/ce --labels GRPO-RM 'GRPO-RM batch' CE --val-keys mIoU \
		--out $(DEMO_DIR)/curves.png \
		--title 'make demo: synthetic VOC, 300 iterations'

bench: install
	$(PY) benchmarks/bench_loss.py
	$(PY) benchmarks/bench_old_model.py

clean:
	rm -rf $(DEMO_DIR) data/synthetic_voc
