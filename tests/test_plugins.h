#ifndef SPNAS_TESTS_TEST_PLUGINS_H_
#define SPNAS_TESTS_TEST_PLUGINS_H_

#include <atomic>

#include "spnas/trainers/trainer.h"

namespace spnas::testing {

// How often AnalyticTrainer::Train ran in this process.
std::atomic<int>& TrainCalls();

}  // namespace spnas::testing

#endif  // SPNAS_TESTS_TEST_PLUGINS_H_
