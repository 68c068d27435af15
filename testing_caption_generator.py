"""Caption photos with the shipped model (or your own): python testing_caption_generator.py -i photo.jpg

Options: see --help; the logic lives in the caption_generator package.
"""
import sys

from caption_generator.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["caption", *sys.argv[1:]]))
