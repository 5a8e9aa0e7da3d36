"""Monthly revenue report for a small online shop (the example file `ghostframe complete --example` uses)."""

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split

orders = pd.read_csv("orders.csv", parse_dates=["order_date"])
orders = orders.dropna(subset=["customer_id", "amount"])
orders["month"] = orders["order_date"].dt.to_period("M")

monthly = orders.groupby("month")["amount"].sum().reset_index()
monthly["growth"] = monthly["amount"].pct_change()
print(monthly.tail())

fig, ax = plt.subplots(figsize=(10, 4))
sns.lineplot(data=monthly, x="month", y="amount", ax=ax)
ax.set_title("Revenue per month")
plt.tight_layout()
plt.savefig("revenue.png")

features = orders[["quantity", "discount", "unit_price"]]
target = orders["amount"]
X_train, X_test, y_train, y_test = train_test_split(features, target, test_size=0.2, random_state=0)
model = LinearRegression()
model.fit(X_train, y_train)
predictions = model.predict(X_test)
score = model.score(
