"""Write the synthetic Pascal VOC demo dataset (a no-op if it is there)."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from grpo_rm_mm.datasets.synthetic_voc import main  # noqa: E402

if __name__ == '__main__':
    main()
