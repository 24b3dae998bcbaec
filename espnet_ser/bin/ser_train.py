"""Stage 4 of SER recipes: train an utterance-level emotion classifier with ESPnet's trainer.

Accepts every option of ESPnet's task runner (``--config``, ``--output_dir``,
``--train_data_path_and_name_and_type``, ``--resume``, ``--ngpu``, ``--patience``,
``--best_model_criterion``, ...), plus the classes registered by
:class:`espnet_ser.tasks.ser.SERTask` (``encoder: ssl``, ``pooling``, ``classifier``).
``--print_config`` prints the full resolved configuration and exits.
"""

from espnet_ser.tasks.ser import SERTask


def get_parser():
    return SERTask.get_parser()


def main(cmd=None):
    SERTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
