/** The notebooks under test, in the order a user runs them. */
export const NOTEBOOKS = [
  "01_unpack_dataset.ipynb",
  "02_train.ipynb",
  "03_validate.ipynb",
  "04_feature_space.ipynb",
];
