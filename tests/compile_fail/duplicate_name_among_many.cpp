// expect: have the same name | duplicate_sibling_name_check<0, 4
// expect-gcc: {"a"}
// Five siblings, "a" and "b" twice each: the error names the first label that
// comes again ("a", children 0 and 4), as the sorted search in core/children.hpp
// must find it.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Named<"a", Linear<3, 4>>, Named<"b", Linear<4, 4>>, Named<"c", Linear<4, 4>>,
                       Named<"b", Linear<4, 4>>, Named<"a", Linear<4, 2>>>;
Model<Bad> m;
