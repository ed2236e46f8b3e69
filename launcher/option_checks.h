// Checks on option values that CLI11's stock validators get wrong for a launcher: they accept
// NaN, print the largest double in their errors and let an empty shell variable through.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace ipex::launcher {

// A number in [min, max] ((min, max] when min_allowed is false), named with its unit in the
// error: "takes seconds from 0 to 3600, not 'nan'".
CLI::Validator number_within(double min, double max, bool min_allowed, const std::string& unit);

// Whole numbers are read in decimal, as the peers' argparse reads them: "010" is ten (CLI11
// alone would read it as octal eight) and "0x10" is refused rather than read as sixteen.
// Rewrites the text to its plain decimal form for the conversion after it.
CLI::Validator decimal_integer();

// A whole number in [min, max].
CLI::Validator whole_number_within(long long min, long long max, const std::string& unit);

// A file name prefix: not empty, no "/" (the files must stay in their folder).
CLI::Validator file_name_prefix();

// Refuses "" and blanks: an empty value is usually a shell variable that came out empty.
CLI::Validator not_blank(const std::string& example);

}  // namespace ipex::launcher
