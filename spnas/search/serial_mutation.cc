#include "spnas/search/serial_mutation.h"

#include "spnas/models/inheritance.h"

namespace spnas {

std::vector<std::string> SplitStages(const std::string& code) {
  std::vector<std::string> stages(1);
  for (char c : code) {
    if (c == '-') {
      stages.emplace_back();
    } else {
      stages.back() += c;
    }
  }
  return stages;
}

std::string JoinStages(const std::vector<std::string>& stages) {
  std::string code;
  for (size_t i = 0; i < stages.size(); ++i) code += (i ? "-" : "") + stages[i];
  return code;
}

namespace {

template <typename T>
const T& Pick(const std::vector<T>& items, std::mt19937_64& rng) {
  return items[std::uniform_int_distribution<size_t>(0, items.size() - 1)(rng)];
}

}  // namespace

std::optional<Mutated> ExpandCode(const std::string& code, std::mt19937_64& rng) {
  std::vector<std::string> stages = SplitStages(code);
  const size_t s = std::uniform_int_distribution<size_t>(0, stages.size() - 1)(rng);
  const size_t p = std::uniform_int_distribution<size_t>(1, stages[s].size())(rng);
  int global = static_cast<int>(p);
  for (size_t i = 0; i < s; ++i) global += static_cast<int>(stages[i].size());
  stages[s].insert(p, "1");
  return Mutated{JoinStages(stages), ExpandMutation(global)};
}

std::optional<Mutated> SwapWidth(const std::string& code, std::mt19937_64& rng) {
  std::string blocks;
  for (char c : code) {
    if (c != '-') blocks += c;
  }
  std::vector<std::pair<int, int>> moves;  // (from, to)
  for (int i = 0; i < static_cast<int>(blocks.size()); ++i) {
    if (blocks[i] != '2') continue;
    if (i > 0 && blocks[i - 1] == '1') moves.emplace_back(i, i - 1);
    if (i + 1 < static_cast<int>(blocks.size()) && blocks[i + 1] == '1') moves.emplace_back(i, i + 1);
  }
  if (moves.empty()) return std::nullopt;
  const auto [from, to] = Pick(moves, rng);
  std::swap(blocks[from], blocks[to]);
  std::string child;
  size_t b = 0;
  for (char c : code) child += c == '-' ? '-' : blocks[b++];
  return Mutated{child, SwapWidthMutation(from, to)};
}

std::optional<Mutated> SwapStage(const std::string& code, std::mt19937_64& rng) {
  const std::vector<std::string> stages = SplitStages(code);
  struct Move {
    size_t boundary;  // between stage boundary and boundary + 1
    bool left;        // the boundary moves left: the last block of the stage joins the next
  };
  std::vector<Move> moves;
  for (size_t s = 0; s + 1 < stages.size(); ++s) {
    if (stages[s].size() >= 2) moves.push_back({s, true});
    if (stages[s + 1].size() >= 2) moves.push_back({s, false});
  }
  if (moves.empty()) return std::nullopt;
  const Move move = Pick(moves, rng);
  std::vector<std::string> child = stages;
  std::string& a = child[move.boundary];
  std::string& b = child[move.boundary + 1];
  int global = 0;
  for (size_t i = 0; i <= move.boundary; ++i) global += static_cast<int>(stages[i].size());
  if (move.left) {
    b.insert(b.begin(), a.back());
    a.pop_back();
    return Mutated{JoinStages(child), SwapStageMutation(global - 1, static_cast<int>(move.boundary) + 1,
                                                        static_cast<int>(move.boundary) + 2)};
  }
  a.push_back(b.front());
  b.erase(b.begin());
  return Mutated{JoinStages(child),
                 SwapStageMutation(global, static_cast<int>(move.boundary) + 2, static_cast<int>(move.boundary) + 1)};
}

std::optional<Mutated> AddStage(const std::string& code, int max_stages) {
  if (static_cast<int>(SplitStages(code).size()) >= max_stages) return std::nullopt;
  return Mutated{code + "-1", AddStageMutation()};
}

}  // namespace spnas
