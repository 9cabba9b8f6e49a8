"""MAE pretraining's ``train.hooks`` and ``train.eval_only``: reconstruction pictures, the skipped-video count, and
the reconstruction loss as the ``--eval-only`` result.
"""

from detectron2.config import LazyCall as L

from vmae_det.engine.hooks import SkipCounterHook
from vmae_det.engine.mae_eval import MAELossEvaluation
from vmae_det.engine.mae_visualization import mae_reconstruction_hook

mae_hooks = [
    # reconstruction_<iter>.png every train.vis_period iterations (0: at every checkpoint) and at the end
    L(mae_reconstruction_hook)(
        output_dir="${train.output_dir}",
        vis_period="${train.vis_period}",
        checkpoint_period="${train.checkpointer.period}",
    ),
    # the skipped_videos metric (undecodable or missing videos) and the total at the end
    L(SkipCounterHook)(what="videos", count="vmae_det.data.video_dataset.skipped_videos", period="${train.log_period}"),
]

# --eval-only: the masked reconstruction loss on 10 batches of dataloader.train
mae_eval_only = L(MAELossEvaluation)(num_batches=10)
