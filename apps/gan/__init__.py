"""DCGAN application: ``python -m apps.gan.train | sample | evaluate`` (see README, "The DCGAN app").

Files: config (typed settings), data/images/folder (datasets, split, step order), model (G, D),
step (one optimisation step), train (the loop), ema, augment (DiffAugment translation),
sampling (noise, BatchNorm standing statistics, grids), classifier (the classifier extractor),
metrics (FID/KID/class statistics via torchmetrics), scoring (what evaluate computes), runtime.
"""
