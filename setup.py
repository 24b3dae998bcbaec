from setuptools import find_packages, setup

setup(
    name="espnet_ser",
    version="0.1.0",
    description="Speech emotion recognition recipes and models as ESPnet plugins",
    packages=find_packages(include=["espnet_ser", "espnet_ser.*"]),
    python_requires=">=3.9",
    install_requires=[
        "torch==2.9.1",
        "torchaudio==2.9.1",
        "espnet==202511",
        "sentencepiece",
        "kaldiio",
        "soundfile",
        "pyyaml",
        "jiwer",
        "numpy",
        "espeakng-loader",
        "scikit-learn",
        "matplotlib",
    ],
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "espnet-ser-score=espnet_ser.bin.score:main",
            "espnet-ser-average-checkpoints=espnet_ser.bin.average_checkpoints:main",
            "espnet-ser-infer=espnet_ser.bin.infer:main",
        ]
    },
)
