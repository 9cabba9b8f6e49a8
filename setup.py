from setuptools import find_packages, setup

setup(
    name="vmae_det",
    version="0.1.0",
    description="Spatio-temporal action detection (AVA) with VideoMAE on detectron2",
    packages=find_packages(include=["vmae_det", "vmae_det.*"]),
    package_data={"vmae_det.evaluation": ["labelmaps/*.pbtxt"]},
    python_requires=">=3.9",
    # torch/torchvision/detectron2 are installed by scripts/install.sh (see README).
    install_requires=[
        "fvcore", "iopath", "omegaconf", "opencv-python-headless", "decord", "av",
        "pycocotools", "matplotlib", "tqdm", "safetensors",
    ],
)
