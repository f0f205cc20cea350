# Headline: GRPO-RM fine-tuning of DINOv2 ViT-S/14 on Pascal VOC 2012.
#   python tools/train.py configs/grpo_rm_dinov2_voc.py
# Set the DINOv2 checkpoint with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
# (default checkpoints/dinov2_vits14_pretrain.pth). Variants, the baseline and
# ablations: configs/grpo_rm/README.md.
_base_ = './grpo_rm/grpo-rm_dinov2-s_8xb32-2500_voc12-518x518.py'
