//go:build race

package adapter

// raceAllocs is what the race detector adds to TestRequestPathAllocs.
const raceAllocs = 1
