package mysql

// kind is the family of a column type, which decides how values are read
// from it and written into it.
type kind uint8

const (
	kindText      kind = iota // char, varchar, text, enum, set, time and anything else read as text
	kindInt                   // tinyint ... bigint
	kindDecimal               // decimal
	kindFloat                 // float, double
	kindBit                   // bit(n)
	kindYear                  // year
	kindDate                  // date
	kindDatetime              // datetime
	kindTimestamp             // timestamp
	kindBinary                // binary, varbinary, blobs, spatial types: base64 text
	kindJSON                  // json
)

// kind maps a column's type to its family.
func (c *column) kind() kind {
	if c.json {
		return kindJSON
	}
	switch c.dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return kindInt
	case "decimal", "numeric":
		return kindDecimal
	case "float", "double", "real":
		return kindFloat
	case "bit":
		return kindBit
	case "year":
		return kindYear
	case "date":
		return kindDate
	case "datetime":
		return kindDatetime
	case "timestamp":
		return kindTimestamp
	}
	if c.binary() {
		return kindBinary
	}
	return kindText
}

// Kinds a source reads that a sink writes as text.
const (
	kindEnum kind = iota + 32 // enum: the member's name
	kindSet                   // set: the members' names joined by commas
	kindTime                  // time: as MySQL writes it (it may be negative or past 24 hours)
)
