"""The figures: photos with captions, loss curves, and photos with their similar ones."""
from PIL import Image

from caption_generator.layouts import open_layout
from caption_generator.show import caption_statistics, photo_grid, plot_history, save_figure, similar_figure
from caption_generator.similar import CaptionIndex
from conftest import FLICKR, PHOTOS


def test_photos_with_captions_statistics_and_loss_curve(descriptions, tmp_path):
    fig = photo_grid(PHOTOS[:4], ["a dog\nruns", "a cat", "", "two birds"], columns=3)
    assert len([ax for ax in fig.axes if ax.images]) == 4
    _, stats = caption_statistics(descriptions)
    assert stats["photos"] == len(descriptions) and stats["captions"] == 115
    plot_history([{"epoch": 1, "loss": 3.0, "val_loss": 3.2}, {"epoch": 2, "loss": 2.5, "val_loss": 2.9}],
                 tmp_path / "loss.png")
    with Image.open(tmp_path / "loss.png") as img:
        assert img.format == "PNG"


def test_figure_shows_each_query_with_its_matches(descriptions, random_features, tmp_path):
    layout = open_layout(FLICKR)
    index = CaptionIndex.build(descriptions, random_features, layout)
    queries = [(layout.photo_path(n), descriptions[n][0], index.query(descriptions[n][0], n=4, threshold=t, exclude=n))
               for n, t in (("1022454332_6af2c1449a.jpg", 0.3), ("2513260012_03d33305cf.jpg", 0.99))]
    assert queries[1][2].below_threshold
    fig = similar_figure(queries)
    assert len(fig.axes) == 2 * 5
    assert "closest below" in fig.axes[5].get_title()
    save_figure(fig, tmp_path / "similar.png")
    with Image.open(tmp_path / "similar.png") as img:
        assert img.format == "PNG" and img.width >= 1000 and img.height >= 500
