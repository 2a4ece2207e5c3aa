"""Real verifiers, one module per kind; `ttscale.registry` turns `--verifier` names into them.

- `clip`: CLIPScore, PickScore and SigLIP (transformers)
- `aesthetic`: the LAION aesthetic predictor (a head on CLIP ViT-L/14)
- `image_reward`: ImageReward (BLIP), its official checkpoint renamed onto transformers' BLIP classes
- `hps`: HPS v2 / v2.1, its official open_clip checkpoint renamed onto transformers' CLIPModel
- `vlm`: a VLM's probability of answering "yes" to "does this image match …?"
- `api`: Gemini and OpenAI-compatible judges with tt-scale-flux's rubric
- `tournament`: pairwise knock-out / round-robin selection (SANA-1.5)
- `ensemble`: rank averages (Ma et al.) and weighted `combined` scores (Scale-RAE)
- `pretrained`: what the model-based ones share (loading with one-line errors, precision)

Importing this package loads none of the optional libraries; each module imports its own when used.
"""
