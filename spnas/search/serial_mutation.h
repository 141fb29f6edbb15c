// The mutations of SpNasS on serial codes (docs/sp_nas.md, serial search): expand, swap (a width-doubling
// position or a stage boundary) and add stage. Each returns the child code and the mutation as
// weight inheritance reads it, or nullopt when the code offers no such move.
#ifndef SPNAS_SEARCH_SERIAL_MUTATION_H_
#define SPNAS_SEARCH_SERIAL_MUTATION_H_

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "spnas/core/records.pb.h"

namespace spnas {

struct Mutated {
  std::string code;
  Mutation mutation;  // what was done, for the record and for weight inheritance
};

// Inserts a '1' block into a random stage, after its first block (so strides stay put and the
// new block can start as an identity).
std::optional<Mutated> ExpandCode(const std::string& code, std::mt19937_64& rng);
// Moves a '2' one block forward or backward (it trades places with a '1').
std::optional<Mutated> SwapWidth(const std::string& code, std::mt19937_64& rng);
// Moves a stage boundary one block left or right, keeping every stage non-empty.
std::optional<Mutated> SwapStage(const std::string& code, std::mt19937_64& rng);
// Appends a stage of one block ("-1") while the code has fewer than max_stages stages.
std::optional<Mutated> AddStage(const std::string& code, int max_stages);

std::vector<std::string> SplitStages(const std::string& code);
std::string JoinStages(const std::vector<std::string>& stages);

}  // namespace spnas

#endif  // SPNAS_SEARCH_SERIAL_MUTATION_H_
