// The base of the CUDA tests that run every fixture model (tests/fixtures/models/*-tiny): skips,
// with the reason, without a usable GPU or without fixtures.
// Thread ownership: the test main thread only.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "backend_test_util.h"
#include "cuda_test_util.h"

namespace autoglm::cuda::test {

class FixtureModelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AUTOGLM_SKIP_WITHOUT_GPU();
    dirs_ = autoglm::test::reference_model_dirs();
    if (dirs_.empty()) GTEST_SKIP() << "no fixture models under tests/fixtures/models";
  }
  std::vector<std::filesystem::path> dirs_;
};

}  // namespace autoglm::cuda::test
