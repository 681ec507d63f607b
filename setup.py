from setuptools import find_packages, setup

setup(
    name="rllib_maml",
    version="0.1.0",
    description="MAML meta-reinforcement learning on Ray RLlib's new API stack",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["rllib_maml", "rllib_maml.*"]),
    python_requires=">=3.10",
    # Install torch before this package (`pip install torch==2.13.0` for the CPU
    # build); a bare torch requirement otherwise pulls the CUDA wheels.
    install_requires=[
        "ray[rllib]==2.60.0",
        "torch>=2.4",
        "gymnasium>=1.0",
        "numpy",
        "pyyaml",
        "matplotlib",
    ],
    entry_points={"console_scripts": ["rllib-maml=rllib_maml.cli:main"]},
    extras_require={
        "mujoco": ["mujoco>=3.0", "gymnasium[mujoco]"],
        # Meta-World's v3 envs (`rllib_maml/MetaWorldML1-v0`, `...ML10-v0`,
        # `...ML45-v0`); metaworld 3.1 pins mujoco 3.3.0.
        "metaworld": ["metaworld>=3.1,<4"],
        # `rllib-maml evaluate --video`: the mp4 writer. Rendering also needs a
        # headless OpenGL library (`apt-get install libosmesa6`).
        "video": ["imageio>=2.9", "imageio-ffmpeg>=0.4"],
        "dev": [
            "pytest>=8",
            "ruff==0.17.6",
            "pre-commit",
            "mujoco>=3.0",
            "gymnasium[mujoco]",
            "metaworld>=3.1,<4",
            "imageio>=2.9",
            "imageio-ffmpeg>=0.4",
        ],
    },
)
