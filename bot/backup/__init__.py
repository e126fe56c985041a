"""The use case: back up devices, answer questions about what was recorded, the schedule."""
