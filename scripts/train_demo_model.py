"""Train the bundled text-to-video model: `python scripts/train_demo_model.py --help`.

A wrapper around `samg_video.demo.train` (also `python -m samg_video.demo.train`).
"""

from samg_video.demo.train import main

if __name__ == "__main__":
    main()
